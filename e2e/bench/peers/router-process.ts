/**
 * One router (or proxy) as its own process, the way it is deployed: spawned in its own process
 * group with its output in a log file, waited on until it answers, measured from /proc while it
 * runs, and stopped with its whole group (SIGTERM, then SIGKILL).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { TreeMonitor, type TreeUsage } from "./proc-stats";

export interface ProcessSpec {
  /** Role in the run, e.g. "router" or "envoy". */
  readonly role: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly logFile: string;
  /** Resolves true once the process serves; polled until `readyTimeoutMs`. */
  readonly ready: () => Promise<boolean>;
  readonly readyTimeoutMs?: number;
}

export interface RouterProcess {
  readonly role: string;
  readonly pid: number;
  readonly monitor: TreeMonitor;
  /** The last lines of its log (for error messages). */
  logTail(): string;
  /** Stops the process group; returns its usage. */
  stop(): Promise<TreeUsage>;
}

export async function startProcess(spec: ProcessSpec): Promise<RouterProcess> {
  const fd = openSync(spec.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(spec.command, [...spec.args], { detached: true, stdio: ["ignore", fd, fd], env: { ...process.env, ...spec.env } });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${spec.role}: could not start ${spec.command}`);
  let exited: string | null = null;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = signal ?? `exit code ${code}`;
      resolve();
    }),
  );
  const monitor = new TreeMonitor(pid);
  monitor.start();
  const logTail = () => {
    try {
      return readFileSync(spec.logFile, "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "";
    }
  };
  const stop = async (): Promise<TreeUsage> => {
    const usage = monitor.stop();
    if (exited === null) {
      signalGroup(pid, "SIGTERM");
      const killed = await Promise.race([exitedPromise.then(() => true), sleep(5_000).then(() => false)]);
      if (!killed) signalGroup(pid, "SIGKILL");
      await Promise.race([exitedPromise, sleep(2_000)]);
    }
    signalGroup(pid, "SIGKILL"); // anything of the group left behind
    return usage;
  };
  const deadline = Date.now() + (spec.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited !== null) {
      await stop();
      throw new Error(`${spec.role} (${spec.command}) exited before it was ready (${exited}):\n${logTail()}`);
    }
    if (await spec.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${spec.role} (${spec.command}) not ready after ${spec.readyTimeoutMs ?? 60_000} ms:\n${logTail()}`);
    }
    await sleep(200);
  }
  return { role: spec.role, pid, monitor, logTail, stop };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
