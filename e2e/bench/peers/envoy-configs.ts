/**
 * Envoy bootstraps for the peers benchmark, all made from the config the project ships
 * (envoy/envoy.yaml, site values filled in by e2e/support/envoy-config/render.ts), so every Envoy in
 * the table is the same Envoy:
 * - with-router: envoy.yaml as shipped — ext_proc to prefix-router, override_host on its pick;
 * - round_robin / least_request: the same listener, routes and "vllm" cluster without the ext_proc
 *   filter and its cluster, the cluster balanced by Envoy's own policy (cache-blind baselines).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { renderEnvoyConfig, type EnvoySite } from "../../../src/cli/envoy-bootstrap";

export type EnvoyMode = "with-router" | "round_robin" | "least_request";

const SHIPPED = join(__dirname, "..", "..", "..", "envoy", "envoy.yaml");

const LB_POLICY: Record<Exclude<EnvoyMode, "with-router">, object> = {
  round_robin: {
    name: "envoy.load_balancing_policies.round_robin",
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin" },
  },
  least_request: {
    name: "envoy.load_balancing_policies.least_request",
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest" },
  },
};

// The parsed YAML is walked by key; its shape is checked by e2e/envoy-config.test.ts.
type Obj = Record<string, any>;

export function envoyConfig(mode: EnvoyMode, site: EnvoySite): string {
  const rendered = renderEnvoyConfig(readFileSync(SHIPPED, "utf8"), site);
  if (mode === "with-router") return rendered;
  const config = parse(rendered) as Obj;
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const filters: Obj[] = hcm.http_filters;
  const extProc = filters.findIndex((f) => f.name === "envoy.filters.http.ext_proc");
  if (extProc < 0) throw new Error(`${SHIPPED} has no ext_proc filter`);
  filters.splice(extProc, 1);
  config.static_resources.clusters = (config.static_resources.clusters as Obj[]).filter((c) => c.name !== "prefix_router");
  const vllm = (config.static_resources.clusters as Obj[]).find((c) => c.name === "vllm")!;
  vllm.load_balancing_policy = { policies: [{ typed_extension_config: LB_POLICY[mode] }] };
  return stringify(config, { lineWidth: 0 });
}

export const envoyBinary = (venvBin: string) => join(venvBin, "envoy");
