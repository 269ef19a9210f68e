/**
 * Every Envoy config we ship — envoy/*.yaml as static bootstraps, and the typed configs inside
 * envoy/istio's EnvoyFilter patches — checked three ways without an Envoy binary:
 *  1. strictly against Envoy's real API protos (grpc-js-xds's data-plane-api snapshot, ≈1.31, plus
 *     the few newer items declared in NEWER_THAN_SNAPSHOT): unknown fields, wrong types, unknown
 *     enum values, oneof clashes, required fields — through every `@type`;
 *  2. against the cross-field rules Envoy enforces at load time (envoy-load-rules.ts);
 *  3. against what prefix-router needs from Envoy (design-rules.ts).
 * Then the checker is shown to fail on broken configs.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { parseConfig } from "../src/config/load-config";
import { DESTINATION_HEADER } from "../src/extproc/decision-response";
import * as design from "./support/envoy-config/design-rules";
import { checkBootstrap, checkFragment, findTyped } from "./support/envoy-config/envoy-load-rules";
import { declareNewer, NEWER_THAN_SNAPSHOT, snapshotHas, type NewerThanSnapshot } from "./support/envoy-config/newer-than-snapshot";
import { renderEnvoyConfig } from "../src/cli/envoy-bootstrap";
import { BOOTSTRAP, SnapshotSchema } from "./support/envoy-config/snapshot-schema";
import { StrictWalker, type WalkContext } from "./support/envoy-config/strict-walker";
import { REPO_ROOT } from "./support/router-fixture";

type Obj = Record<string, any>;
const ENVOY_DIR = join(REPO_ROOT, "envoy");
const read = (rel: string) => readFileSync(join(ENVOY_DIR, rel), "utf8");
const clone = <T>(v: T): T => structuredClone(v);

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? filesUnder(join(dir, f)) : [join(dir, f)]));
}
const ALL_FILES = filesUnder(ENVOY_DIR).map((f) => relative(ENVOY_DIR, f)).sort();
const BOOTSTRAPS = ALL_FILES.filter((f) => /^[^/]+\.yaml$/.test(f));
const ISTIO_YAML = ALL_FILES.filter((f) => /^istio\/[^/]+\.yaml$/.test(f));

const schema = new SnapshotSchema();
declareNewer(schema);
const walker = new StrictWalker(schema);
const walkContext = (type: string, value: unknown, partial = false): WalkContext => walker.validate(type, value, { partial });
const walk = (type: string, value: unknown, partial = false): string[] => walkContext(type, value, partial).problems;

// The values the shipped VM configs must agree with: the README's example router config.
const exampleRouter = parseConfig(parse(readFileSync(join(REPO_ROOT, "examples", "router.yaml"), "utf8")));

const clusters = (doc: Obj): Obj[] => doc.static_resources.clusters;
const clusterNamed = (doc: Obj, name: string): Obj => clusters(doc).find((c) => c.name === name)!;
const hcmOf = (doc: Obj): Obj => doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const extProcOf = (doc: Obj): Obj => findTyped(doc, design.EXT_PROC_TYPE)[0].value;
const endpoints = (c: Obj): string[] =>
  c.load_assignment.endpoints.flatMap((e: Obj) => e.lb_endpoints.map((l: Obj) => `${l.endpoint.address.socket_address.address}:${l.endpoint.address.socket_address.port_value}`));

describe("envoy/ holds only files this test knows how to check", () => {
  it.each(ALL_FILES)("%s", (file) => {
    expect(BOOTSTRAPS.includes(file) || ISTIO_YAML.includes(file) || /^systemd\/[^/]+\.service$/.test(file) || file.endsWith(".md")).toBe(true);
  });
  it("found the shipped configs", () => {
    expect(BOOTSTRAPS).toEqual(["envoy-full-duplex.yaml", "envoy-original-dst.yaml", "envoy.yaml"]);
  });
});

describe.each(BOOTSTRAPS)("envoy/%s", (file) => {
  const text = read(file);
  const doc = parse(text) as Obj;
  const bodyMode: design.BodyMode = file.includes("full-duplex") ? "FULL_DUPLEX_STREAMED" : "BUFFERED";

  it("matches Envoy's Bootstrap API strictly, through every @type", () => {
    expect(walk(BOOTSTRAP, doc)).toEqual([]);
  });

  it("passes the cross-field rules Envoy enforces at load time", () => {
    expect(checkBootstrap(doc)).toEqual([]);
  });

  it("says in its header which Envoy version it needs", () => {
    expect(text).toMatch(/^# Envoy version: >= 1\.\d+/m);
  });

  it("strips router-owned headers before route selection and ext_proc, and ext_proc is set up as the router expects", () => {
    const hcm = hcmOf(doc);
    // Early header mutation: a spoofed pick must not even choose a route (the ORIGINAL_DST config's route 1).
    expect(design.checkFilterChain(hcm.http_filters, "http_filters", hcm.early_header_mutation_extensions)).toEqual([]);
    expect(design.checkFilterChain(hcm.http_filters, "http_filters")).not.toEqual([]);
    expect(design.checkExtProc(extProcOf(doc), bodyMode, "ext_proc")).toEqual([]);
    expect(extProcOf(doc).grpc_service.envoy_grpc.cluster_name).toBe("prefix_router");
    expect(typeof hcm.stream_idle_timeout).toBe("string");
  });

  it("talks HTTP/2 to the router, without Envoy's default 1024-request cap", () => {
    const c = clusterNamed(doc, "prefix_router");
    const opts = c.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    expect(opts.explicit_http_config.http2_protocol_options).toBeDefined();
    expect(c.circuit_breakers.thresholds[0].max_requests).toBeGreaterThan(1024);
    expect(endpoints(c)).toEqual([exampleRouter.extProc.listen]);
  });

  it("routes on the router's pick with a health-checked fallback, and clears the route cache only when routes depend on it", () => {
    const routes: Obj[] = hcmOf(doc).route_config.virtual_hosts[0].routes;
    routes.forEach((r, i) => expect(design.checkRouteTimeouts(r, `routes.${i}`)).toEqual([]));
    const picked = clusters(doc).filter((c) => design.pickMechanism(c) !== null);
    expect(picked).toHaveLength(1);
    const mechanism = design.pickMechanism(picked[0]);
    if (mechanism === "override-host") {
      expect(design.checkOverrideHost(picked[0], picked[0].name)).toEqual([]);
      expect(design.checkReplicaCluster(picked[0], picked[0].name)).toEqual([]);
      expect(routes.map((r) => r.route.cluster)).toEqual([picked[0].name]);
      // The pick is read at host selection; the single route never changes.
      expect(extProcOf(doc).route_cache_action).toBe("RETAIN");
    } else {
      expect(picked[0].original_dst_lb_config).toEqual({ use_http_header: true, http_header_name: DESTINATION_HEADER });
      // Route 1 needs the header, route 2 (no pick) goes to the health-checked replicas.
      expect(routes[0].match.headers).toEqual([{ name: DESTINATION_HEADER, present_match: true }]);
      expect(routes[0].route.cluster).toBe(picked[0].name);
      expect(routes[1].match.headers).toBeUndefined();
      expect(design.checkReplicaCluster(clusterNamed(doc, routes[1].route.cluster), routes[1].route.cluster)).toEqual([]);
      // The router's clear_route_cache must make Envoy re-match after the header is set.
      expect(extProcOf(doc).route_cache_action ?? "DEFAULT").toBe("DEFAULT");
    }
    expect(endpoints(clusterNamed(doc, "vllm"))).toEqual(exampleRouter.workers.map((w) => w.address));
  });

  it("renders for a site (what e2e/envoy-real.test.ts runs) into a config that still validates", () => {
    const site = { listenAddress: "127.0.0.1", listenPort: 18080, adminPort: 19901, routerAddress: "127.0.0.1:19002", replicas: ["127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003"] };
    const rendered = parse(renderEnvoyConfig(text, site)) as Obj;
    expect(walk(BOOTSTRAP, rendered)).toEqual([]);
    expect(checkBootstrap(rendered)).toEqual([]);
    expect(endpoints(clusterNamed(rendered, "vllm"))).toEqual(site.replicas);
    expect(endpoints(clusterNamed(rendered, "prefix_router"))).toEqual([site.routerAddress]);
    expect(rendered.static_resources.listeners[0].address.socket_address).toEqual({ address: "127.0.0.1", port_value: 18080 });
    expect(rendered.admin.address.socket_address.port_value).toBe(19901);
  });
});

// Istio: EnvoyFilter patch values are Envoy configs of the type their applyTo names.
const PATCH_TYPES: Record<string, string> = {
  HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
  NETWORK_FILTER: "envoy.config.listener.v3.Filter",
  CLUSTER: "envoy.config.cluster.v3.Cluster",
  LISTENER: "envoy.config.listener.v3.Listener",
  ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
  VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
  HTTP_ROUTE: "envoy.config.route.v3.Route",
  EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
};
const CONTEXTS = ["ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"];
const OPERATIONS = ["MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"];
const istioDocs: Obj[] = ISTIO_YAML.flatMap((f) => parseAllDocuments(read(f)).map((d) => ({ ...(d.toJS() as Obj), __file: f })));
const envoyFilters = istioDocs.filter((d) => d.kind === "EnvoyFilter");
const vmDoc = parse(read("envoy.yaml")) as Obj;

describe("envoy/istio", () => {
  it("has a gateway and a sidecar EnvoyFilter", () => {
    expect(envoyFilters.map((f) => f.spec.configPatches[0].match.context).sort()).toEqual(["GATEWAY", "SIDECAR_OUTBOUND"]);
    const gateway = envoyFilters.find((f) => f.spec.configPatches[0].match.context === "GATEWAY")!;
    expect(gateway.spec.workloadSelector.labels).toEqual({ istio: "ingressgateway" });
  });

  describe.each(envoyFilters.map((f) => [`${f.__file} (${f.metadata.name})`, f] as const))("%s", (_name, filter) => {
    const patches: Obj[] = filter.spec.configPatches;

    it("is an EnvoyFilter Istio accepts: known applyTo, context and operation", () => {
      expect(filter.apiVersion).toBe("networking.istio.io/v1alpha3");
      for (const p of patches) {
        expect(Object.keys(PATCH_TYPES)).toContain(p.applyTo);
        expect(CONTEXTS).toContain(p.match.context);
        expect(OPERATIONS).toContain(p.patch.operation);
      }
    });

    it.each(patches.map((p, i) => [i, p] as const))("patch %i: its value matches Envoy's API strictly and passes the load-time rules", (i, p) => {
      const merge = p.patch.operation === "MERGE";
      expect(walk(PATCH_TYPES[p.applyTo], p.patch.value, merge)).toEqual([]);
      expect(checkFragment(p.patch.value, p.applyTo === "CLUSTER" ? "cluster" : "other", `configPatches.${i}.patch.value`)).toEqual([]);
    });

    it("strips router-owned headers before ext_proc, with the VM config's ext_proc and override_host settings", () => {
      const filters = patches.filter((p) => p.applyTo === "HTTP_FILTER").map((p) => p.patch.value);
      expect(design.checkFilterChain(filters, "HTTP_FILTER patches")).toEqual([]);
      const extProc = findTyped(patches, design.EXT_PROC_TYPE)[0].value;
      const { grpc_service: _istio, ...istioSettings } = extProc;
      const { grpc_service: _vm, ...vmSettings } = extProcOf(vmDoc);
      expect(istioSettings).toEqual(vmSettings);
      const cluster = patches.find((p) => p.applyTo === "CLUSTER")!.patch.value;
      expect(cluster.load_balancing_policy).toEqual(clusterNamed(vmDoc, "vllm").load_balancing_policy);
    });

    it("reaches the router through its Service, which speaks gRPC", () => {
      const service = istioDocs.find((d) => d.kind === "Service" && d.metadata.name === "prefix-router")!;
      const port = service.spec.ports.find((p: Obj) => p.name === "grpc-ext-proc");
      expect(port.appProtocol).toBe("grpc");
      const extProc = findTyped(patches, design.EXT_PROC_TYPE)[0].value as Obj;
      expect(extProc.grpc_service.envoy_grpc.cluster_name).toBe(`outbound|${port.port}||${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`);
    });
  });

  it("the ConfigMap's router.yaml is a valid router config", () => {
    const cm = istioDocs.find((d) => d.kind === "ConfigMap")!;
    expect(() => parseConfig(parse(cm.data["router.yaml"]))).not.toThrow();
  });
});

describe("the skip list (NEWER_THAN_SNAPSHOT)", () => {
  it.each(NEWER_THAN_SNAPSHOT.map((e) => [e.name, e] as const))("%s is still absent from the API snapshot", (_name, entry) => {
    expect(entry.addedIn).toMatch(/^1\.\d+$/);
    expect(snapshotHas(new SnapshotSchema(), entry)).toBe(false);
  });

  it("every entry is used by a shipped config", () => {
    const contexts = [
      ...BOOTSTRAPS.map((f) => walkContext(BOOTSTRAP, parse(read(f)))),
      ...envoyFilters.flatMap((f) => f.spec.configPatches.map((p: Obj) => walkContext(PATCH_TYPES[p.applyTo], p.patch.value, p.patch.operation === "MERGE"))),
    ];
    const seen = new Set(contexts.flatMap((c) => [...c.typesSeen, ...c.enumValuesSeen]));
    expect(NEWER_THAN_SNAPSHOT.filter((e) => !seen.has(e.name)).map((e) => e.name)).toEqual([]);
  });

  it("refuses an entry the snapshot already has", () => {
    const stale: NewerThanSnapshot = { ...NEWER_THAN_SNAPSHOT[1], name: "envoy.extensions.filters.http.router.v3.Router", declare: () => undefined };
    expect(() => declareNewer(new SnapshotSchema(), [stale])).toThrow(/already: remove it/);
  });
});

describe("the checker can fail", () => {
  const base = parse(read("envoy.yaml")) as Obj;
  const extProc = (doc: Obj): Obj => doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config;
  const mutate = (edit: (doc: Obj) => void): Obj => {
    const doc = clone(base);
    edit(doc);
    return doc;
  };
  const EP = "static_resources.listeners.0.filter_chains.0.filters.0.typed_config.http_filters.0.typed_config";

  it.each([
    ["an unknown field", (d: Obj) => (extProc(d).failure_mode_alow = true), `${EP}.failure_mode_alow: unknown field of ${design.EXT_PROC_TYPE}`],
    ["an unknown field deep inside nested Anys", (d: Obj) => (clusterNamed(d, "vllm").load_balancing_policy.policies[0].typed_extension_config.typed_config.fallback_policy.policies[0].typed_extension_config.typed_config.choice_cnt = 2), "choice_cnt: unknown field of envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest"],
    ["a camelCase key", (d: Obj) => (extProc(d).messageTimeout = "1s"), "(write it as message_timeout)"],
    ["a string for a bool", (d: Obj) => (extProc(d).failure_mode_allow = "true"), `${EP}.failure_mode_allow: expected true or false (got "true")`],
    ["a number for a string", (d: Obj) => (extProc(d).stat_prefix = 7), `${EP}.stat_prefix: expected a string (got 7)`],
    ["a scalar for a repeated field", (d: Obj) => (d.static_resources.clusters = clusters(d)[0]), "static_resources.clusters: expected a list"],
    ["an out-of-range port", (d: Obj) => (d.admin.address.socket_address.port_value = 70000), "port_value: must be lte 65535 (got 70000)"],
    ["an unknown enum value", (d: Obj) => (extProc(d).processing_mode.request_body_mode = "BUFFERD"), `${EP}.processing_mode.request_body_mode: "BUFFERD" is not a value of enum`],
    ["a duration in the wrong form", (d: Obj) => (extProc(d).message_timeout = "250ms"), `${EP}.message_timeout: expected a duration`],
    ["two members of one oneof", (d: Obj) => (extProc(d).disable_clear_route_cache = true), "disable_clear_route_cache and route_cache_action are in oneof"],
    ["a missing required field", (d: Obj) => delete clusterNamed(d, "vllm").health_checks[0].interval, "interval: required field of envoy.config.core.v3.HealthCheck is missing"],
    ["an unknown @type", (d: Obj) => (extProc(d)["@type"] = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor"), "unknown message envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor"],
  ])("catches %s", (_what, edit, message) => {
    const problems = walk(BOOTSTRAP, mutate(edit));
    expect(problems.some((p) => p.includes(message)), problems.join("\n")).toBe(true);
  });

  it.each([
    ["FULL_DUPLEX_STREAMED without trailers", (d: Obj) => Object.assign(extProc(d), { failure_mode_allow: false, processing_mode: { ...extProc(d).processing_mode, request_body_mode: "FULL_DUPLEX_STREAMED" } }), "needs request_trailer_mode SEND"],
    ["a route to an undefined cluster", (d: Obj) => (hcmOf(d).route_config.virtual_hosts[0].routes[0].route.cluster = "vllm2"), "names cluster vllm2, which is not defined"],
    ["the router filter not last", (d: Obj) => hcmOf(d).http_filters.reverse(), "the router filter must be the last HTTP filter"],
    ["an ORIGINAL_DST cluster with a load-balancing policy", (d: Obj) => Object.assign(clusterNamed(d, "vllm"), { type: "ORIGINAL_DST" }), "needs lb_policy CLUSTER_PROVIDED"],
  ])("catches %s (Envoy's load-time rules)", (_what, edit, message) => {
    const problems = checkBootstrap(mutate(edit));
    expect(problems.some((p) => p.includes(message)), problems.join("\n")).toBe(true);
  });

  it("catches design mistakes: a missing header strip, a timeout below the router's budget", () => {
    const doc = mutate((d) => delete hcmOf(d).early_header_mutation_extensions);
    expect(design.checkFilterChain(hcmOf(doc).http_filters, "f", hcmOf(doc).early_header_mutation_extensions)).toEqual([
      "f: router-owned headers must be stripped before ext_proc (early_header_mutation_extensions, or a header_mutation filter before it)",
    ]);
    const partial = mutate((d) => hcmOf(d).early_header_mutation_extensions[0].typed_config.mutations.pop());
    expect(design.checkFilterChain(hcmOf(partial).http_filters, "f", hcmOf(partial).early_header_mutation_extensions)).toEqual(["f: the header strip does not remove x-prefix-router-keyed"]);
    const cfg = { ...extProc(base), message_timeout: "0.1s" };
    expect(design.checkExtProc(cfg, "BUFFERED", "x")).toEqual([expect.stringContaining("must exceed the router's default decision budget")]);
  });
});
