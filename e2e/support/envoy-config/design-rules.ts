/**
 * What prefix-router itself needs from an Envoy config — the reasons are in envoy/envoy.yaml's
 * comments and docs/envoy.md. Each check reads the names it depends on from the router's code
 * (the destination and debug headers, the default decision budget), so renaming one there makes
 * this fail until the configs follow.
 */
import { routingSchema } from "../../../src/config/schema";
import { DEBUG_HEADERS, DESTINATION_HEADER } from "../../../src/extproc/decision-response";
import { durationSeconds } from "./strict-walker";

type Obj = Record<string, any>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const typeOf = (v: unknown): string => (isObject(v) && typeof v["@type"] === "string" ? v["@type"].slice(v["@type"].lastIndexOf("/") + 1) : "");

export const EXT_PROC_TYPE = "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";
export const HEADER_MUTATION_TYPE = "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
export const EARLY_HEADER_MUTATION_TYPE = "envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation";
export const OVERRIDE_HOST_TYPE = "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost";
export const ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router";

/** Headers that only the router may set: Envoy must drop client copies before ext_proc. */
export const ROUTER_OWNED_HEADERS = [DESTINATION_HEADER, ...Object.values(DEBUG_HEADERS)];
/** Headers the router reads from Envoy's messages (src/extproc/process-stream.ts, src/telemetry/tracing.ts). */
export const HEADERS_THE_ROUTER_READS = [":method", ":path", ":status", "x-request-id", "traceparent", "tracestate"];
export const DEFAULT_DECISION_BUDGET_S = routingSchema.parse({}).decisionTimeoutMs / 1000;

export type BodyMode = "BUFFERED" | "FULL_DUPLEX_STREAMED";

/**
 * The ext_proc filter and its neighbours. Client copies of router-owned headers must be gone
 * before ext_proc: removed by the connection manager's early header mutation (`early`: before
 * route selection too, which the ORIGINAL_DST config's header-matched route needs), or by a
 * header_mutation filter placed before ext_proc (the Istio patches).
 */
export function checkFilterChain(httpFilters: readonly Obj[], at: string, early: readonly Obj[] = []): string[] {
  const problems: string[] = [];
  const types = httpFilters.map((f) => typeOf(f.typed_config));
  const strip = types.indexOf(HEADER_MUTATION_TYPE);
  const extProc = types.indexOf(EXT_PROC_TYPE);
  if (extProc < 0) return [`${at}: no ext_proc filter`];
  const earlyRemoved: unknown[] = early.filter((e) => typeOf(e.typed_config) === EARLY_HEADER_MUTATION_TYPE).flatMap((e) => (e.typed_config.mutations ?? []).map((m: Obj) => m.remove));
  const filterRemoved: unknown[] = strip >= 0 && strip < extProc ? (httpFilters[strip].typed_config.mutations?.request_mutations ?? []).map((m: Obj) => m.remove) : [];
  if (earlyRemoved.length === 0 && filterRemoved.length === 0) problems.push(`${at}: router-owned headers must be stripped before ext_proc (early_header_mutation_extensions, or a header_mutation filter before it)`);
  else {
    const missing = ROUTER_OWNED_HEADERS.filter((h) => !earlyRemoved.includes(h) && !filterRemoved.includes(h));
    if (missing.length) problems.push(`${at}: the header strip does not remove ${missing.join(", ")}`);
  }
  if (types[types.length - 1] !== ROUTER_TYPE && types.includes(ROUTER_TYPE)) problems.push(`${at}: the router filter must come last`);
  return problems;
}

/** The ext_proc settings the router is built for. */
export function checkExtProc(cfg: Obj, bodyMode: BodyMode, at: string): string[] {
  const problems: string[] = [];
  const want = {
    request_header_mode: "SEND",
    response_header_mode: "SEND",
    request_body_mode: bodyMode,
    response_body_mode: "NONE",
    // Envoy requires SEND with FULL_DUPLEX_STREAMED; otherwise nothing to send.
    request_trailer_mode: bodyMode === "FULL_DUPLEX_STREAMED" ? "SEND" : "SKIP",
    response_trailer_mode: "SKIP",
  };
  for (const [k, v] of Object.entries(want)) if (cfg.processing_mode?.[k] !== v) problems.push(`${at}.processing_mode.${k}: expected ${v} (got ${cfg.processing_mode?.[k]})`);
  if (cfg.allow_mode_override !== false) problems.push(`${at}.allow_mode_override: expected false`);
  // Fail open wherever Envoy allows it (it refuses with FULL_DUPLEX_STREAMED).
  const failOpen = bodyMode === "BUFFERED";
  if (cfg.failure_mode_allow !== failOpen) problems.push(`${at}.failure_mode_allow: expected ${failOpen}`);
  const timeout = typeof cfg.message_timeout === "string" ? durationSeconds(cfg.message_timeout) : null;
  if (timeout === null || timeout <= DEFAULT_DECISION_BUDGET_S)
    problems.push(`${at}.message_timeout: must exceed the router's default decision budget (${DEFAULT_DECISION_BUDGET_S}s) (got ${cfg.message_timeout})`);
  else if (bodyMode === "BUFFERED" && timeout > 1) problems.push(`${at}.message_timeout: keep it short with fail-open (got ${cfg.message_timeout}): a stuck router delays every request by it`);
  const allowed: string[] = (cfg.forward_rules?.allowed_headers?.patterns ?? []).map((p: Obj) => p.exact);
  if (cfg.forward_rules) {
    const missing = HEADERS_THE_ROUTER_READS.filter((h) => !allowed.includes(h));
    if (missing.length) problems.push(`${at}.forward_rules: the router reads ${missing.join(", ")} — forward them`);
  }
  return problems;
}

/** How the pick reaches the replica: override_host on a cluster, or an ORIGINAL_DST cluster. */
export function pickMechanism(cluster: Obj): "override-host" | "original-dst" | null {
  const policies: Obj[] = cluster.load_balancing_policy?.policies ?? [];
  if (policies.some((p) => typeOf(p.typed_extension_config?.typed_config) === OVERRIDE_HOST_TYPE)) return "override-host";
  if (cluster.type === "ORIGINAL_DST") return "original-dst";
  return null;
}

/** The override_host policy must read the router's header and fall back to a built-in policy. */
export function checkOverrideHost(cluster: Obj, at: string): string[] {
  const problems: string[] = [];
  const policies: Obj[] = cluster.load_balancing_policy?.policies ?? [];
  if (typeOf(policies[0]?.typed_extension_config?.typed_config) !== OVERRIDE_HOST_TYPE) problems.push(`${at}: override_host must be the first load-balancing policy`);
  const oh = policies[0]?.typed_extension_config?.typed_config ?? {};
  const sources: Obj[] = oh.override_host_sources ?? [];
  if (sources.length !== 1 || sources[0].header !== DESTINATION_HEADER)
    problems.push(`${at}: override_host_sources must be exactly [{ header: ${DESTINATION_HEADER} }] (two sources naming one host would spend a retry on it)`);
  if (!(oh.fallback_policy?.policies ?? []).length) problems.push(`${at}: override_host needs a fallback_policy`);
  return problems;
}

/** A cluster the fallback may use: static replicas, health-checked on /health, no panic routing. */
export function checkReplicaCluster(cluster: Obj, at: string): string[] {
  const problems: string[] = [];
  if (cluster.type !== "STATIC") problems.push(`${at}: expected a STATIC cluster listing the replicas`);
  if (!(cluster.health_checks ?? []).some((h: Obj) => h.http_health_check?.path === "/health")) problems.push(`${at}: health-check the replicas on /health`);
  if (cluster.common_lb_config?.healthy_panic_threshold?.value !== 0) problems.push(`${at}: set common_lb_config.healthy_panic_threshold to 0`);
  return problems;
}

/** Long-lived LLM streams: no whole-request timeout, an idle timeout instead. */
export function checkRouteTimeouts(route: Obj, at: string): string[] {
  const problems: string[] = [];
  if (route.route?.timeout !== "0s") problems.push(`${at}.route.timeout: expected 0s — Envoy's 15 s default cuts generations (got ${route.route?.timeout})`);
  if (typeof route.route?.idle_timeout !== "string") problems.push(`${at}.route.idle_timeout: set one (a dead stream must end)`);
  return problems;
}
