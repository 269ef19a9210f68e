/**
 * "Prove it": simulated vLLM replicas in front of a real router. One replica reports its KV events
 * through the ingest API (as the vllm-patch plugin does), the other publishes vLLM's native ZMQ
 * stream; the router's index must learn exactly the blocks each one caches, keyed as the router
 * keys requests, and route a repeated chat to the replica that holds it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseVllmMetrics } from "../src/scrape/vllm-metrics";
import { IngestReporter } from "../src/sim/ingest-reporter";
import { H100_LLAMA_8B } from "../src/sim/replica-model";
import { startSimReplica, type SimReplica } from "../src/sim/sim-replica";
import { loadTokenizerRegistry } from "../src/tokenize/tokenizer-registry";
import { chatBody, QWEN3_TOKENIZER, realPrompts, routerKeys, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

const TOKEN = "sim-a-ingest-token-0123456789";
const ENGINE = { blockSize: 16, totalBlocks: 4096, maxBatchedTokens: 8192, maxSeqs: 256, cost: H100_LLAMA_8B };
const SYSTEM = [...realPrompts()].sort((a, b) => b.length - a.length).slice(0, 2).join("\n\n");

interface Completion {
  choices: { message?: { content: string }; text?: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function post(sim: SimReplica, path: string, body: string) {
  return fetch(`http://${sim.server.address}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
}

describe("simulated vLLM replicas with a real router", () => {
  let a: SimReplica; // reports through the ingest API
  let b: SimReplica; // publishes vLLM's ZMQ stream
  let r: RunningRouter;
  let reporter: IngestReporter;

  /** The router's own keys for a chat body: its parser, its tokenizer, its chain root. */
  const keysFor = (body: string) => routerKeys(r.service, body);
  const held = async (worker: string, keys: string[]) => (await r.service.index.lookup(keys, [worker])).get(worker)!;

  beforeAll(async () => {
    const registry = await loadTokenizerRegistry([{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }], { segmentCacheBytes: 64 << 20 });
    const common = { listen: "127.0.0.1:0", model: "qwen3", hashSeed: "0", tokenizer: registry.get("qwen3")!, engine: ENGINE, timeScale: 0.02 };
    a = await startSimReplica({ ...common, id: "sim-a" });
    b = await startSimReplica({ ...common, id: "sim-b", zmq: { endpoint: "tcp://127.0.0.1:*", replayEndpoint: "tcp://127.0.0.1:*" } });
    r = await startTestRouter(
      testConfig({
        workers: [
          { id: "sim-a", address: a.server.address, models: ["qwen3"], ingestToken: TOKEN },
          { id: "sim-b", address: b.server.address, models: ["qwen3"], kvEvents: b.publisher!.endpoint, kvEventsReplay: b.publisher!.replayEndpoint! },
        ],
        ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 60_000 },
      }),
    );
    // The router's ingest port is known only now: attach the reporter as the plugin would at engine start.
    reporter = new IngestReporter({ target: r.service.ingest!.server.address, workerId: "sim-a", model: "qwen3", blockSize: 16, token: TOKEN, flushMs: 20, snapshot: () => a.server.engine.cachedKeys() });
    a.server.addKvSink((events) => reporter.offer(events));
    reporter.start();
  });

  afterAll(async () => {
    await reporter?.stop();
    await r?.stop();
    await a?.close();
    await b?.close();
  });

  it("the same chat twice: the second response reports cached tokens, as vLLM does", async () => {
    const body = chatBody(`Prove it. ${SYSTEM}`, "What is this about?");
    const first = await post(a, "/v1/chat/completions", body);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-sim-replica")).toBe("sim-a");
    const one = (await first.json()) as Completion;
    const two = (await (await post(a, "/v1/chat/completions", body)).json()) as Completion;
    const prompt = one.usage.prompt_tokens;
    expect((await keysFor(body)).length).toBe(Math.floor(prompt / 16)); // the router counts the same tokens
    expect(one.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(two.usage.prompt_tokens_details.cached_tokens).toBe(Math.floor((prompt - 1) / 16) * 16);
    expect(two.usage.completion_tokens).toBe(16);
    expect(two.choices[0].message!.content).toBe(one.choices[0].message!.content);
  });

  it("the next chat turn hits the blocks of the previous answer too (generated tokens are cached)", async () => {
    const turn1 = [{ role: "system", content: `Multi-turn. ${SYSTEM}` }, { role: "user", content: "Start." }];
    const one = (await (await post(a, "/v1/chat/completions", JSON.stringify({ model: "qwen3", messages: turn1, max_tokens: 40 }))).json()) as Completion;
    const turn2 = [...turn1, { role: "assistant", content: one.choices[0].message!.content }, { role: "user", content: "And then?" }];
    const two = (await (await post(a, "/v1/chat/completions", JSON.stringify({ model: "qwen3", messages: turn2 }))).json()) as Completion;
    const kvAfterTurn1 = one.usage.prompt_tokens + 40 - 1; // the last sampled token is never fed back
    expect(two.usage.prompt_tokens_details.cached_tokens).toBe(Math.floor(kvAfterTurn1 / 16) * 16);
  });

  it("the router's index learns the replica's blocks through the ingest reporter, and routes there", async () => {
    const body = chatBody(`Ingest. ${SYSTEM}`, "Summarize.");
    expect((await post(a, "/v1/chat/completions", body)).status).toBe(200);
    const keys = await keysFor(body);
    await until("the index to hold sim-a's blocks", async () => (await held("sim-a", keys)) === keys.length);
    expect(await held("sim-b", keys)).toBe(0);
    // Exact mirror: the router holds for sim-a every key the engine caches (prompt and generated).
    expect(await reporter.flush()).toBe(true);
    expect((await r.service.index.stats()).workers["sim-a"].blocks).toBe(a.server.engine.cachedKeys().length);
    expect(reporter.stats.failures).toBe(0);

    const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody(`Ingest. ${SYSTEM}`, "Another question.") });
    expect(ex.upstreamHeaders.get("x-prefix-router-worker")).toBe("sim-a");
    expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toBe("hit");
    await ex.complete(200);
  });

  it("the router's ZmqKvSubscriber accepts the simulator's native vLLM stream", async () => {
    const body = chatBody(`ZMQ. ${SYSTEM}`, "Go on.");
    expect((await post(b, "/v1/chat/completions", body)).status).toBe(200);
    const keys = await keysFor(body);
    await until("the index to hold sim-b's blocks", async () => (await held("sim-b", keys)) === keys.length);
    const sub = r.service.events!.subscribers.get("sim-b")!;
    expect(sub.stats()).toMatchObject({ untranslatable: 0, malformed: 0, rejected: 0 });
    await until("every batch", () => sub.stats().lastSeq === b.publisher!.seq - 1);
    expect((await r.service.index.stats()).workers["sim-b"].blocks).toBe(b.server.engine.cachedKeys().length);
  });

  it("streams SSE chunks with the same text, usage last, then [DONE]", async () => {
    const body = JSON.stringify({ ...JSON.parse(chatBody(`Prove it. ${SYSTEM}`, "What is this about?")), stream: true, stream_options: { include_usage: true }, max_tokens: 24 });
    const res = await post(a, "/v1/chat/completions", body);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = (await res.text()).split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[]; usage?: Completion["usage"] });
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks).toHaveLength(1 + 24 + 1); // role, one chunk per token (the last with finish_reason, as vLLM), usage
    const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? "")).join("");
    const plain = (await (await post(a, "/v1/chat/completions", JSON.stringify({ ...JSON.parse(body), stream: false }))).json()) as Completion;
    expect(text).toBe(plain.choices[0].message!.content);
    expect(chunks.at(-2)!.choices[0].finish_reason).toBe("length");
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 24, prompt_tokens_details: { cached_tokens: plain.usage.prompt_tokens_details.cached_tokens } });
  });

  it("serves /v1/completions, /v1/models, /health, and refuses an unknown model", async () => {
    const done = (await (await post(b, "/v1/completions", JSON.stringify({ model: "qwen3", prompt: "Hello there", max_tokens: 3 }))).json()) as Completion;
    expect(done.usage.completion_tokens).toBe(3);
    expect(done.choices[0].text).toMatch(/^\w+( \w+){2}$/);
    const models = (await (await fetch(`http://${b.server.address}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(["qwen3"]);
    expect((await fetch(`http://${b.server.address}/health`)).status).toBe(200);
    expect((await post(b, "/v1/chat/completions", chatBody("x", "y", "llama3"))).status).toBe(404);
  });

  it("exposes vLLM's metric names on /metrics", async () => {
    const text = await (await fetch(`http://${a.server.address}/metrics`)).text();
    for (const name of ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:time_to_first_token_seconds_bucket", "vllm:cache_config_info"]) {
      expect(text).toContain(`${name}{`);
    }
    // What the router's scraper reads of it: the same parser it uses on a real vLLM.
    const parsed = parseVllmMetrics(text);
    expect(parsed.ok && parsed.sample.kvCapacityTokens).toBe(ENGINE.totalBlocks * ENGINE.blockSize);
    expect(text).toMatch(/^# TYPE vllm:prefix_cache_hits_total counter$/m);
    const hits = Number(/^vllm:prefix_cache_hits_total\{[^}]*\} (\S+)$/m.exec(text)![1]);
    expect(hits).toBeGreaterThan(0);
    expect(text).toMatch(/^vllm:time_to_first_token_seconds_count\{[^}]*\} [1-9]/m);
  });
});
