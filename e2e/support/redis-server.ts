/**
 * Starts a private redis-server for one test file (never the shared one on 6379): a free port on
 * 127.0.0.1, no persistence, its own temp dir. Tests may kill, pause or restart it to inject faults;
 * restart() reuses the same port so clients can reconnect. The binary is `redis-server` on PATH,
 * or $REDIS_SERVER_BIN.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port";

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Graceful shutdown (SIGTERM), waits for the process to exit, removes its temp dir. */
  stop(): Promise<void>;
  /** SIGKILL, no waiting: the abrupt death a client must survive. */
  kill(): void;
  /** Kills the server if running, then starts a fresh, empty one on the same port. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: the server keeps its sockets open but answers nothing (a hung Redis). */
  pause(): void;
  resume(): void;
}

export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. ["--maxmemory", "64mb"]. */
  readonly args?: readonly string[];
  /** How long to wait for PING to answer (default 10 s). */
  readonly readyTimeoutMs?: number;
  /** Run the server on this CPU only (`taskset -c`): a benchmark gives Redis a core of its own, as a deployment would. */
  readonly cpu?: number;
}

const BIN = process.env.REDIS_SERVER_BIN ?? "redis-server";
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), "prefix-router-redis-"));
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  let port = 0;
  let child: ChildProcess | undefined;
  // Another process may grab the port between our probe and redis binding it: retry on a new one.
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    child = await launch(port, dir, options, readyTimeoutMs).catch((err: Error) => {
      if (attempt === 4) throw err;
      return undefined;
    });
  }
  let current = child!;

  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once("exit", () => r()));

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      current.kill("SIGCONT");
      current.kill("SIGTERM");
      await exited(current);
      rmSync(dir, { recursive: true, force: true });
    },
    kill() {
      current.kill("SIGKILL");
    },
    async restart() {
      current.kill("SIGKILL");
      await exited(current);
      current = await launch(port, dir, options, readyTimeoutMs);
    },
    pause() {
      current.kill("SIGSTOP");
    },
    resume() {
      current.kill("SIGCONT");
    },
  };
}

async function launch(port: number, dir: string, options: RedisServerOptions, readyTimeoutMs: number): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, ...(options.args ?? [])];
  // taskset execs the server: the child is redis-server itself, for kill, pause and restart.
  const [command, argv] = options.cpu === undefined ? [BIN, args] : ["taskset", ["-c", String(options.cpu), BIN, ...args]];
  const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  child.once("exit", () => live.delete(child));
  let output = "";
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  try {
    await Promise.race([waitForPing(port, child, readyTimeoutMs), spawnError]);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`redis-server on port ${port} did not start: ${(err as Error).message}\n${output}`);
  }
  return child;
}

async function waitForPing(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    if (await ping(port)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no PONG within ${timeoutMs} ms`);
}

/** True when a raw RESP PING gets +PONG (no client library, so the helper has no dependencies). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      reply += d.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}


/** A test run that crashes must not leave redis-servers behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}
