/**
 * Runs an Envoy process on a config text until its admin port says ready, and stops it again.
 * Used by `prefix-router stack`, the real-Envoy tests and the Envoy benchmark.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface EnvoyRunOptions {
  /** The Envoy binary. */
  readonly bin: string;
  /** The bootstrap, YAML. */
  readonly config: string;
  /** Its listener and admin ports (for the URLs). */
  readonly listenPort: number;
  readonly adminPort: number;
  /** File name of the config in a temporary folder. */
  readonly name?: string;
  readonly logLevel?: string;
  /** Worker threads (default 2). */
  readonly concurrency?: number;
  /** Every chunk Envoy writes (access log on stdout, warnings on stderr). */
  readonly onOutput?: (chunk: string) => void;
  readonly readyTimeoutMs?: number;
}

export interface RunningEnvoy {
  readonly listenPort: number;
  readonly adminPort: number;
  /** http://127.0.0.1:<listenPort> */
  readonly url: string;
  readonly admin: string;
  readonly configFile: string;
  /** The last 64 KB of Envoy's output. */
  output(): string;
  /** A counter or gauge from /stats, 0 when absent. */
  stat(name: string): Promise<number>;
  /** Waits until `hosts` hosts of `cluster` pass health checks. */
  waitForHealthy(cluster: string, hosts: number, ms?: number): Promise<void>;
  /** Resolves when the process exits, with its exit code or signal. */
  readonly exited: Promise<string>;
  stop(): Promise<void>;
}

export async function waitUntil(what: string, check: () => Promise<boolean>, ms: number, log: () => string = () => ""): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const output = log();
  throw new Error(`timed out waiting for ${what}${output ? `\n--- envoy output ---\n${output}` : ""}`);
}

export async function runEnvoy(o: EnvoyRunOptions): Promise<RunningEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), "prefix-router-envoy-"));
  const configFile = join(dir, o.name ?? "envoy.yaml");
  writeFileSync(configFile, o.config);
  const args = ["-c", configFile, "--log-level", o.logLevel ?? "warn", "--disable-hot-restart", "--concurrency", String(o.concurrency ?? 2)];
  const proc: ChildProcess = spawn(o.bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const collect = (b: Buffer) => {
    const chunk = b.toString();
    out = (out + chunk).slice(-64_000);
    o.onOutput?.(chunk);
  };
  proc.stdout?.on("data", collect);
  proc.stderr?.on("data", collect);
  const exited = new Promise<string>((resolve) => {
    proc.on("exit", (code, signal) => resolve(String(code ?? signal)));
    proc.on("error", (err) => resolve(err.message));
  });
  void exited.then((how) => {
    out += `\n[envoy exited: ${how}]\n`;
    rmSync(dir, { recursive: true, force: true });
  });
  const admin = `http://127.0.0.1:${o.adminPort}`;
  const output = () => out;
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  };
  let dead = false;
  void exited.then(() => (dead = true));
  try {
    await waitUntil("Envoy /ready", async () => !dead && (await fetch(`${admin}/ready`)).status === 200, o.readyTimeoutMs ?? 30_000, output);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    listenPort: o.listenPort,
    adminPort: o.adminPort,
    url: `http://127.0.0.1:${o.listenPort}`,
    admin,
    configFile,
    output,
    exited,
    stat: async (name) => {
      const text = await (await fetch(`${admin}/stats?filter=${encodeURIComponent(`^${name.replace(/\./g, "\\.")}$`)}`)).text();
      const m = /: (\d+)\s*$/m.exec(text);
      return m ? Number(m[1]) : 0;
    },
    waitForHealthy: (cluster, hosts, ms = 30_000) =>
      waitUntil(
        `${hosts} healthy host(s) in cluster ${cluster}`,
        async () => ((await (await fetch(`${admin}/clusters`)).text()).match(new RegExp(`^${cluster}::[^:]+:\\d+::health_flags::healthy$`, "gm")) ?? []).length === hosts,
        ms,
        output,
      ),
    stop,
  };
}
