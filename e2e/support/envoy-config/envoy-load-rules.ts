/**
 * Cross-field rules Envoy enforces when it loads a config — beyond what the proto schema says —
 * for the parts our configs use. Each rule names the Envoy source that enforces it. They run on
 * the plain parsed YAML, after the strict schema walk.
 */

const EXT_PROC = "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";
const OVERRIDE_HOST = "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost";
const HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "envoy.extensions.filters.http.router.v3.Router";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export interface Found {
  readonly path: string;
  readonly value: Obj;
}

/** Every object in `root` whose "@type" ends with `/` + `typeName`. */
export function findTyped(root: unknown, typeName: string, path = ""): Found[] {
  const out: Found[] = [];
  const visit = (v: unknown, p: string): void => {
    if (Array.isArray(v)) v.forEach((item, i) => visit(item, `${p}.${i}`));
    else if (isObject(v)) {
      const t = v["@type"];
      if (typeof t === "string" && t.endsWith(`/${typeName}`)) out.push({ path: p.replace(/^\./, ""), value: v });
      for (const [k, item] of Object.entries(v)) visit(item, `${p}.${k}`);
    }
  };
  visit(root, path);
  return out;
}

/** ext_proc: source/extensions/filters/http/ext_proc/config.cc (verifyFilterConfig, verifyProcessingModeConfig). */
function extProcRules(root: unknown): string[] {
  const problems: string[] = [];
  for (const { path, value } of findTyped(root, EXT_PROC)) {
    if (("grpc_service" in value) === ("http_service" in value)) problems.push(`${path}: ext_proc needs exactly one of grpc_service and http_service`);
    const mode = isObject(value.processing_mode) ? value.processing_mode : {};
    // Not a rule any more: Envoy 1.35.x (after #40757), 1.36 and 1.40 accept failure_mode_allow with FULL_DUPLEX_STREAMED.
    if (mode.request_body_mode === "FULL_DUPLEX_STREAMED" && mode.request_trailer_mode !== "SEND")
      problems.push(`${path}: request_body_mode FULL_DUPLEX_STREAMED needs request_trailer_mode SEND`);
    if (mode.response_body_mode === "FULL_DUPLEX_STREAMED" && mode.response_trailer_mode !== "SEND")
      problems.push(`${path}: response_body_mode FULL_DUPLEX_STREAMED needs response_trailer_mode SEND`);
    if (value.disable_clear_route_cache === true && value.route_cache_action !== undefined && value.route_cache_action !== "DEFAULT")
      problems.push(`${path}: disable_clear_route_cache and route_cache_action cannot both be set`);
  }
  return problems;
}

/** override_host: source/extensions/load_balancing_policies/override_host/load_balancer.cc (makeOverrideSources). */
function overrideHostRules(root: unknown): string[] {
  const problems: string[] = [];
  for (const { path, value } of findTyped(root, OVERRIDE_HOST)) {
    list(value.override_host_sources).forEach((src, i) => {
      const s = isObject(src) ? src : {};
      const header = typeof s.header === "string" && s.header !== "";
      if (header === ("metadata" in s)) problems.push(`${path}.override_host_sources.${i}: set exactly one of header and metadata`);
    });
  }
  return problems;
}

/** ORIGINAL_DST: source/extensions/clusters/original_dst/original_dst_cluster.cc (createClusterImpl). */
function clusterRules(c: Obj, at: string): string[] {
  const problems: string[] = [];
  if (c.type !== "ORIGINAL_DST") return problems;
  if (c.lb_policy !== "CLUSTER_PROVIDED") problems.push(`${at}: an ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED`);
  if ("load_assignment" in c) problems.push(`${at}: an ORIGINAL_DST cluster must have no load_assignment`);
  const cfg = isObject(c.original_dst_lb_config) ? c.original_dst_lb_config : {};
  if (typeof cfg.http_header_name === "string" && cfg.http_header_name !== "" && cfg.use_http_header !== true)
    problems.push(`${at}: http_header_name needs use_http_header: true`);
  return problems;
}

/**
 * A static bootstrap: names are unique, every cluster a route or a gRPC service names exists
 * (source/common/router/config_impl.cc validates static route clusters), and the router filter is
 * the last HTTP filter (source/extensions/filters/network/http_connection_manager/config.cc).
 */
function bootstrapRules(bootstrap: Obj): string[] {
  const problems: string[] = [];
  const sr = isObject(bootstrap.static_resources) ? bootstrap.static_resources : {};
  const clusters = list(sr.clusters).filter(isObject);
  const listeners = list(sr.listeners).filter(isObject);
  const names = new Set<string>();
  for (const c of clusters) {
    if (names.has(String(c.name))) problems.push(`static_resources.clusters: duplicate cluster name ${String(c.name)}`);
    names.add(String(c.name));
  }
  const listenerNames = new Set<string>();
  for (const l of listeners) {
    if (listenerNames.has(String(l.name))) problems.push(`static_resources.listeners: duplicate listener name ${String(l.name)}`);
    listenerNames.add(String(l.name));
  }
  clusters.forEach((c, i) => problems.push(...clusterRules(c, `static_resources.clusters.${i}`)));

  const visit = (v: unknown, p: string): void => {
    if (Array.isArray(v)) v.forEach((item, i) => visit(item, `${p}.${i}`));
    else if (isObject(v)) {
      for (const [k, item] of Object.entries(v)) {
        const here = p ? `${p}.${k}` : k;
        if ((k === "cluster" && p.endsWith(".route")) || (k === "cluster_name" && p.endsWith("envoy_grpc"))) {
          if (typeof item !== "string" || !names.has(item)) problems.push(`${here}: names cluster ${String(item)}, which is not defined`);
        }
        visit(item, here);
      }
    }
  };
  visit(sr, "static_resources");

  for (const { path, value } of findTyped(bootstrap, HCM)) {
    const filters = list(value.http_filters).filter(isObject);
    const routerAt = filters.findIndex((f) => isObject(f.typed_config) && String(f.typed_config["@type"]).endsWith(`/${ROUTER}`));
    if (routerAt !== filters.length - 1) problems.push(`${path}.http_filters: the router filter must be the last HTTP filter`);
  }
  return problems;
}

/** Every load-time rule for a static bootstrap. */
export function checkBootstrap(bootstrap: unknown): string[] {
  if (!isObject(bootstrap)) return ["(root): not an object"];
  return [...bootstrapRules(bootstrap), ...extProcRules(bootstrap), ...overrideHostRules(bootstrap)];
}

/** The rules that apply to a fragment (an Istio patch value, `kind` says what it is). */
export function checkFragment(fragment: unknown, kind: "cluster" | "other", base: string): string[] {
  const prefix = (p: string) => (p.startsWith(":") ? `${base}${p}` : `${base}.${p}`);
  const problems = [...extProcRules(fragment), ...overrideHostRules(fragment)].map((p) => prefix(p));
  if (kind === "cluster" && isObject(fragment)) problems.push(...clusterRules(fragment, base));
  return problems;
}
