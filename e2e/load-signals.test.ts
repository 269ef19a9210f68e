/**
 * The router's load view from the workers' own /metrics: a real router scraping simulated vLLM
 * replicas over HTTP. Work that another router sent to a replica (here: requests sent straight to
 * it) shows up in the load view and steers new requests away; a worker whose /metrics hangs or is
 * gone never delays a decision.
 */
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { H100_LLAMA_8B } from "../src/sim/replica-model";
import { startSimReplica, type SimReplica } from "../src/sim/sim-replica";
import { loadTokenizerRegistry } from "../src/tokenize/tokenizer-registry";
import { freePort } from "./support/free-port";
import { chatBody, QWEN3_TOKENIZER, realPrompts, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

const ENGINE = { blockSize: 16, totalBlocks: 8192, maxBatchedTokens: 8192, maxSeqs: 256, cost: H100_LLAMA_8B };

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("load from the workers' /metrics", () => {
  let a: SimReplica;
  let b: SimReplica;
  let r: RunningRouter;
  let silent: Server;

  beforeAll(async () => {
    const registry = await loadTokenizerRegistry([{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }], { segmentCacheBytes: 64 << 20 });
    // Slow clock: a long prefill stays queued for seconds of wall time.
    const common = { listen: "127.0.0.1:0", model: "qwen3", hashSeed: "0", tokenizer: registry.get("qwen3")!, engine: ENGINE, timeScale: 20 };
    a = await startSimReplica({ ...common, id: "a" });
    b = await startSimReplica({ ...common, id: "b" });
    // A worker whose /metrics accepts the connection and never answers.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const silentPort = (silent.address() as { port: number }).port;
    r = await startTestRouter(
      testConfig({
        workers: [
          { id: "a", address: a.server.address, models: ["qwen3"] },
          { id: "b", address: b.server.address, models: ["qwen3"] },
          { id: "hung", address: `127.0.0.1:${await freePort()}`, models: ["qwen3"], metricsUrl: `http://127.0.0.1:${silentPort}/metrics` },
        ],
        routing: { load: { scrapeMetrics: true, scrapeIntervalMs: 50, scrapeTimeoutMs: 200, staleAfterMs: 1_000 } },
      }),
    );
  });

  afterAll(async () => {
    await r?.stop();
    await Promise.all([a?.close(), b?.close()]);
    silent?.close();
  });

  it("work another router sent to a replica shows in the load view and steers new requests to the idle one", async () => {
    await until("a first sample of a and b", () => r.service.router.loads().get("a")?.sampleAgeMs != null && r.service.router.loads().get("b")?.sampleAgeMs != null);
    // Another router's traffic: three long prompts straight to replica a.
    const long = realPrompts().slice(0, 3).map((p) => chatBody(p.repeat(12), "Summarise."));
    const direct = long.map((body) => fetch(`http://${a.server.address}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...JSON.parse(body), max_tokens: 4 }) }));
    await until("a's queue in the load view", () => (r.service.router.loads().get("a")?.running ?? 0) >= 2);
    const loadA = r.service.router.loads().get("a")!;
    expect(loadA.queuedTokens + loadA.kvTokens).toBeGreaterThan(0);
    expect(r.service.router.loads().get("b")!.running).toBe(0);

    // New conversations now go to b (or the hung worker, which looks idle by its ledger) — never to a.
    for (let i = 0; i < 6; i++) {
      const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(`new conversation ${i}`, realPrompts()[10 + i]) });
      expect(ex.upstreamHeaders.get("x-prefix-router-worker")).not.toBe("a");
      expect(["load", "tie", "cache"]).toContain(ex.upstreamHeaders.get("x-prefix-router-decided-by"));
      expect(Number(ex.upstreamHeaders.get("x-prefix-router-estimate-ms"))).toBeGreaterThan(0);
      await ex.complete(200);
    }
    for (const res of await Promise.all(direct)) expect(res.status).toBe(200);
  }, 60_000);

  it("a hung /metrics never delays a decision: its worker falls back to the router's own ledger", async () => {
    const hung = r.service.router.loads().get("hung")!;
    expect(hung.sampleAgeMs).toBeNull(); // never answered
    expect(r.service.scraper!.failingWorkers.has("hung")).toBe(true);
    const started = performance.now();
    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("timing", "hello") });
    expect(performance.now() - started).toBeLessThan(200); // well under the scrape timeout it would wait for
    expect(Number(ex.upstreamHeaders.get("x-prefix-router-decision-us"))).toBeLessThan(100_000);
    await ex.complete(200);
    const metrics = await r.service.metrics.registry.getSingleMetricAsString("prefix_router_worker_scrapes_total");
    expect(metrics).toMatch(/worker="hung",result="failed"} [1-9]/);
    expect(metrics).toMatch(/worker="a",result="ok"} [1-9]/);
  });
});
