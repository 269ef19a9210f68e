/**
 * The peers benchmark's own parts that can be wrong without the benchmark noticing: the metrics
 * parser, the derived Envoy configs (checked by a real Envoy when .venv has one), the /proc
 * reader, and the reply scripts.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { BenchRequest, Workload } from "../../../src/bench/workloads/workload";
import { envoyConfig, type EnvoyMode } from "./envoy-configs";
import { sampleTree } from "./proc-stats";
import { sumSamples } from "./peers-summary";
import { replyScripts } from "./sim-cluster";

const ENVOY = join(__dirname, "..", "..", "..", ".venv", "bin", "envoy");
const SITE = { listenAddress: "127.0.0.1", listenPort: 18080, adminPort: 18081, routerAddress: "127.0.0.1:19002", replicas: ["127.0.0.1:18101", "127.0.0.1:18102"] };

describe("sumSamples", () => {
  const text = [
    "# HELP vllm:prefix_cache_hits Prefix cache hits, in terms of number of cached tokens.",
    "# TYPE vllm:prefix_cache_hits counter",
    'vllm:prefix_cache_hits_total{engine="0",model_name="qwen3"} 1200',
    'vllm:prefix_cache_hits_total{engine="1",model_name="qwen3"} 34.5',
    "vllm:prefix_cache_hits_total 6",
    'vllm:prefix_cache_hits_total_created{engine="0"} 1795999999',
    'vllm:prefix_cache_queries_total{engine="0",model_name="qwen3"} 5000',
  ].join("\n");
  it("adds every sample of the metric, whatever its labels, and nothing of a longer name", () => {
    expect(sumSamples(text, "vllm:prefix_cache_hits_total")).toBe(1240.5);
    expect(sumSamples(text, "vllm:prefix_cache_queries_total")).toBe(5000);
    expect(sumSamples(text, "vllm:request_success_total")).toBe(0);
  });
});

describe("Envoy configs derived from envoy/envoy.yaml", () => {
  type Obj = Record<string, any>;
  const parsed = (mode: EnvoyMode) => parse(envoyConfig(mode, SITE)) as Obj;
  const filters = (c: Obj) => (c.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters as Obj[]).map((f) => f.name);
  const vllm = (c: Obj) => (c.static_resources.clusters as Obj[]).find((x) => x.name === "vllm")!;

  it("with-router is the shipped config with the site's values", () => {
    const c = parsed("with-router");
    expect(filters(c)).toContain("envoy.filters.http.ext_proc");
    expect(vllm(c).load_balancing_policy.policies[0].typed_extension_config.name).toBe("envoy.load_balancing_policies.override_host");
    expect(vllm(c).load_assignment.endpoints[0].lb_endpoints).toHaveLength(2);
  });

  it.each([
    ["round_robin", "envoy.load_balancing_policies.round_robin"],
    ["least_request", "envoy.load_balancing_policies.least_request"],
  ] as const)("%s: no ext_proc and no router cluster, the replicas balanced by %s", (mode, policy) => {
    const c = parsed(mode);
    expect(filters(c)).not.toContain("envoy.filters.http.ext_proc");
    expect(filters(c).at(-1)).toBe("envoy.filters.http.router");
    expect((c.static_resources.clusters as Obj[]).map((x) => x.name)).toEqual(["vllm"]);
    expect(vllm(c).load_balancing_policy.policies).toHaveLength(1);
    expect(vllm(c).load_balancing_policy.policies[0].typed_extension_config.name).toBe(policy);
    expect(vllm(c).health_checks).toEqual(vllm(parsed("with-router")).health_checks); // the same Envoy otherwise
  });

  it.skipIf(!existsSync(ENVOY))(`a real Envoy accepts all three (envoy --mode validate)${existsSync(ENVOY) ? "" : " — SKIPPED: no .venv/bin/envoy (scripts/python-venv.sh)"}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "peers-envoy-validate-"));
    for (const mode of ["with-router", "round_robin", "least_request"] as const) {
      const file = join(dir, `${mode}.yaml`);
      writeFileSync(file, envoyConfig(mode, SITE));
      const out = spawnSync(ENVOY, ["--mode", "validate", "-c", file, "--disable-hot-restart"], { encoding: "utf8", timeout: 60_000 });
      expect(out.status, `${mode}: ${out.stdout}${out.stderr}`).toBe(0);
    }
  });
});

describe("sampleTree", () => {
  it("counts a child process in its parent's tree, with CPU time and resident memory", async () => {
    const child = spawn(process.execPath, ["-e", "let x = 0; for (let i = 0; i < 3e7; i++) x += i; setTimeout(() => {}, 10000)"], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const withChild = sampleTree(process.pid);
      expect(withChild.pids).toContain(child.pid);
      const alone = sampleTree(child.pid!);
      expect(alone.pids).toEqual([child.pid]);
      expect(alone.rssBytes).toBeGreaterThan(10 * 2 ** 20);
      expect(alone.cpuS).toBeGreaterThan(0);
      expect(withChild.rssBytes).toBeGreaterThan(alone.rssBytes);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("replyScripts", () => {
  const req = (id: string, prompt: number[], output?: number[]): BenchRequest =>
    ({ id, prompt: () => Uint32Array.from(prompt), outputTokens: () => (output ? Uint32Array.from(output) : undefined) }) as unknown as BenchRequest;
  it("finds a request's scripted reply by its prompt ids, and nothing for another prompt", () => {
    const script = replyScripts({ requests: [req("a", [1, 2, 3], [7, 8]), req("b", [1, 2, 4])] } as unknown as Workload);
    expect(Array.from(script(Uint32Array.from([1, 2, 3]))!)).toEqual([7, 8]);
    expect(script(Uint32Array.from([1, 2, 4]))).toBeUndefined();
    expect(script(Uint32Array.from([1, 2]))).toBeUndefined();
  });
});
