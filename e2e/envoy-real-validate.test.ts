/**
 * `envoy --mode validate` on every config we ship: the VM bootstraps as written and as rendered
 * for a site, and the Istio EnvoyFilter patches applied to the VM bootstrap the way Istio would
 * (their filters before the router filter, their cluster settings merged into the replicas'
 * cluster). The real Envoy is the last word; e2e/envoy-config.test.ts checks the same files against
 * Envoy's API definitions and the router's design rules without a binary.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { locateEnvoy, shippedConfig, versionText } from "./support/envoy-process";
import { REPO_ROOT } from "./support/router-fixture";

type Obj = Record<string, any>;
const { envoy: ENVOY, skip: SKIP } = locateEnvoy();
const dir = mkdtempSync(join(tmpdir(), "prefix-router-validate-"));
const BOOTSTRAPS = readdirSync(join(REPO_ROOT, "envoy")).filter((f) => f.endsWith(".yaml")).sort();
const ISTIO = readdirSync(join(REPO_ROOT, "envoy", "istio")).filter((f) => f.startsWith("envoyfilter-"));

function validate(name: string, text: string): { ok: boolean; output: string } {
  const file = join(dir, name);
  writeFileSync(file, text);
  const r = spawnSync(ENVOY!.path, ["--mode", "validate", "-c", file, "--log-level", "warn"], { encoding: "utf8", timeout: 60_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** envoy.yaml with an EnvoyFilter's patches applied in place of its own ext_proc set-up. */
function withIstioPatches(filter: Obj): string {
  const doc = parse(readFileSync(join(REPO_ROOT, "envoy", "envoy.yaml"), "utf8")) as Obj;
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  delete hcm.early_header_mutation_extensions;
  const router = hcm.http_filters.pop();
  hcm.http_filters = [];
  for (const p of filter.spec.configPatches as Obj[]) {
    if (p.applyTo === "HTTP_FILTER") {
      expect(p.patch.operation).toBe("INSERT_BEFORE");
      const value = structuredClone(p.patch.value);
      // Istio names clusters by service; the bootstrap's router cluster is prefix_router.
      if (value.typed_config?.grpc_service) value.typed_config.grpc_service.envoy_grpc.cluster_name = "prefix_router";
      hcm.http_filters.push(value);
    } else if (p.applyTo === "CLUSTER") {
      expect(p.patch.operation).toBe("MERGE");
      Object.assign(doc.static_resources.clusters.find((c: Obj) => c.name === "vllm"), p.patch.value);
    }
  }
  hcm.http_filters.push(router);
  return stringify(doc, { lineWidth: 0 });
}

describe.skipIf(SKIP !== null)(`envoy --mode validate — ${SKIP ? `SKIPPED: ${SKIP}` : `Envoy ${versionText(ENVOY!.version)}`}`, () => {
  it.each(BOOTSTRAPS)("envoy/%s as shipped", (file) => {
    const r = validate(file, readFileSync(join(REPO_ROOT, "envoy", file), "utf8"));
    expect(r.ok, r.output).toBe(true);
  });

  it.each(BOOTSTRAPS)("envoy/%s rendered for a site (what the real-Envoy tests run)", (file) => {
    const site = { listenAddress: "127.0.0.1", listenPort: 18080, adminPort: 19901, routerAddress: "127.0.0.1:19002", replicas: ["127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003"] };
    const r = validate(`rendered-${file}`, shippedConfig(file, site));
    expect(r.ok, r.output).toBe(true);
  });

  const filters = ISTIO.flatMap((f) => parseAllDocuments(readFileSync(join(REPO_ROOT, "envoy", "istio", f), "utf8")).map((d) => [f, d.toJS() as Obj] as const)).filter(([, d]) => d?.kind === "EnvoyFilter");
  it.each(filters.map(([f, d]) => [`${f} (${d.metadata.name})`, d] as const))("envoy/istio/%s patches, applied to the VM bootstrap", (name, filter) => {
    const r = validate(`istio-${filter.metadata.name}.yaml`, withIstioPatches(filter));
    expect(r.ok, `${name}\n${r.output}`).toBe(true);
  });

  it("the check can fail: Envoy refuses FULL_DUPLEX_STREAMED without request trailers", () => {
    const text = readFileSync(join(REPO_ROOT, "envoy", "envoy-full-duplex.yaml"), "utf8").replace("request_trailer_mode: SEND", "request_trailer_mode: SKIP");
    const r = validate("no-trailers-full-duplex.yaml", text);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/request_trailer_mode has to be set to SEND/);
  });
});
