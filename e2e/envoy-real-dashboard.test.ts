/**
 * The Grafana dashboard (grafana/prefix-router-dashboard.json) reads only metrics that exist: every
 * metric name in its PromQL is exposed by the router (/metrics), a vLLM replica (the simulator's
 * /metrics, named as vLLM names them) or a real Envoy running the shipped config (/stats/prometheus).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chat } from "./support/chat-client";
import { locateEnvoy, versionText } from "./support/envoy-process";
import { startEnvoyStack, type EnvoyStack } from "./support/envoy-stack";
import { REPO_ROOT } from "./support/router-fixture";

const { envoy: ENVOY, skip: SKIP } = locateEnvoy();
const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, "grafana", "prefix-router-dashboard.json"), "utf8")) as { panels: { title: string; targets: { expr: string }[] }[] };
const METRIC = /\b(prefix_router_[a-z_]+|vllm:[a-z_]+|envoy_[a-z_]+)\b/g;

/** Metric names in a Prometheus exposition: sample names and # TYPE families. */
function names(exposition: string): Set<string> {
  const out = new Set<string>();
  for (const line of exposition.split("\n")) {
    const m = /^# TYPE (\S+)/.exec(line) ?? /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m) out.add(m[1]);
  }
  return out;
}

describe.skipIf(SKIP !== null)(`the Grafana dashboard's metrics exist — ${SKIP ? `SKIPPED: ${SKIP}` : `Envoy ${versionText(ENVOY!.version)}`}`, () => {
  let stack: EnvoyStack;
  let exposed: Set<string>;

  beforeAll(async () => {
    stack = await startEnvoyStack({ envoy: ENVOY!, file: "envoy.yaml", replicas: ["w1"], router: { extProc: { listen: "127.0.0.1:0" }, ingest: { listen: "127.0.0.1:0", requireAuth: false } } });
    await stack.envoy.waitForHealthy("vllm", 1);
    expect((await chat(stack.envoy.url, stack.replicas, { messages: [{ role: "user", content: "hello" }] })).status).toBe(200);
    const replica = await (await fetch(`http://${stack.replicas.addresses[0]}/metrics`)).text();
    const envoy = await (await fetch(`${stack.envoy.admin}/stats/prometheus`)).text();
    const router = await stack.router.service.metrics.registry.metrics();
    exposed = new Set([...names(router), ...names(replica), ...names(envoy)]);
  });
  afterAll(async () => stack?.close());

  it("has panels with queries", () => {
    expect(dashboard.panels.length).toBeGreaterThan(5);
    for (const p of dashboard.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
  });

  it.each(dashboard.panels.map((p) => [p.title, p] as const))("%s", (_title, panel) => {
    for (const { expr } of panel.targets) {
      const used = [...expr.matchAll(METRIC)].map((m) => m[1]);
      expect(used.length, expr).toBeGreaterThan(0);
      for (const name of used) {
        const family = name.replace(/_(bucket|sum|count)$/, "");
        expect(exposed.has(name) || exposed.has(family), `${name} in ${expr}`).toBe(true);
      }
    }
  });
});
