import { describe, expect, it } from "vitest";
import { blockKeys, chainRoot } from "../prefix/block-keys";
import { SimReplicaEngine } from "./replica-engine";
import { H100_LLAMA_8B, type EngineKvEvent, type ReplicaConfig, type SimRequest } from "./replica-model";
import { stepDurationMs } from "./step-cost";

const BS = 16;
const ROOT = chainRoot({ hashSeed: "0", model: "sim-test" });
const VLLM_DEFAULTS: ReplicaConfig = { blockSize: BS, totalBlocks: 27_500, maxBatchedTokens: 8192, maxSeqs: 1024, cost: H100_LLAMA_8B };
const END = 1e12;

/** A prompt of `n` distinct tokens starting at `base` (different bases never share a block). */
function request(id: string, n: number, base = 0, maxTokens = 1, outputTokens?: Uint32Array): SimRequest {
  const prompt = Uint32Array.from({ length: n }, (_, i) => (base + i) % 150_000);
  return { id, prompt, promptKeys: blockKeys(prompt, BS, ROOT), maxTokens, root: ROOT, ...(outputTokens ? { outputTokens } : {}) };
}

function engine(over: Partial<ReplicaConfig> = {}): SimReplicaEngine {
  return new SimReplicaEngine({ ...VLLM_DEFAULTS, ...over });
}

function runAlone(e: SimReplicaEngine, r: SimRequest, at: number) {
  e.submit(r, at);
  e.advanceTo(END);
  return e.takeCompleted().find((t) => t.id === r.id)!;
}

describe("SimReplicaEngine: TTFT against DESIGN §7", () => {
  it.each([
    { tokens: 1024, designMs: 38 },
    { tokens: 4096, designMs: 116 },
    { tokens: 16384, designMs: 551 },
  ])("an uncached $tokens-token prompt alone: ≈ $designMs ms (±10%)", ({ tokens, designMs }) => {
    const t = runAlone(engine(), request("r", tokens), 100);
    const ttft = t.firstTokenMs - t.arrivalMs;
    expect(ttft).toBeGreaterThan(designMs * 0.9);
    expect(ttft).toBeLessThan(designMs * 1.1);
    expect(t.cachedTokens).toBe(0);
  });

  it("a cached prompt is much faster, and vLLM's last-token recompute caps the hit", () => {
    const e = engine();
    const cold = runAlone(e, request("cold", 4096), 0);
    const warm = runAlone(e, request("warm", 4096), 1000);
    expect(warm.cachedTokens).toBe(4080); // ⌊4095/16⌋ blocks: the last block is recomputed
    const warmTtft = warm.firstTokenMs - warm.arrivalMs;
    expect(warmTtft).toBeCloseTo(stepDurationMs(H100_LLAMA_8B, [{ context: 4080, tokens: 16 }], 0, 0), 9);
    expect(warmTtft).toBeLessThan((cold.firstTokenMs - cold.arrivalMs) / 5);
    // One token past a block boundary: every full block hits, 1 token is computed.
    const e2 = engine();
    runAlone(e2, request("a", 4097), 0);
    expect(runAlone(e2, request("b", 4097), 1000).cachedTokens).toBe(4096);
  });

  it("chunked prefill splits a 20k prompt over 3 steps of at most maxBatchedTokens", () => {
    const e = engine();
    const r = request("long", 20_000);
    e.submit(r, 0);
    const stored: number[] = [];
    const starts: number[] = [];
    while (e.nextStepMs() !== undefined) {
      starts.push(e.nextStepMs()!);
      e.advanceTo(e.nextStepMs()!); // exactly one step
      stored.push(e.takeKvEvents().reduce((n, ev) => n + (ev.type === "stored" ? ev.keys.length : 0), 0));
    }
    expect(stored).toEqual([512, 512, 226]); // 8192, 8192, 3616 tokens → full blocks cached per step
    const chunks = [{ context: 0, tokens: 8192 }, { context: 8192, tokens: 8192 }, { context: 16384, tokens: 3616 }];
    const t = e.takeCompleted()[0];
    expect(t.firstTokenMs).toBeCloseTo(chunks.reduce((ms, c) => ms + stepDurationMs(H100_LLAMA_8B, [c], 0, 0), 0), 6);
    expect(starts[1]).toBeCloseTo(stepDurationMs(H100_LLAMA_8B, [chunks[0]], 0, 0), 9);
  });
});

describe("SimReplicaEngine: batching and admission", () => {
  it("batches a new prefill with running decodes in one step (fixed cost once)", () => {
    const e = engine();
    e.submit(request("a", 1024, 0, 100), 0);
    e.advanceTo(0); // a's prefill
    const first = e.nextStepMs()!;
    e.submit(request("b", 512, 50_000, 1), first - 1);
    e.advanceTo(first); // a decodes (KV 1025), b prefills 512
    const b = e.takeCompleted().find((t) => t.id === "b")!;
    expect(b.firstTokenMs - first).toBeCloseTo(stepDurationMs(H100_LLAMA_8B, [{ context: 0, tokens: 512 }], 1, 1025), 9);
    expect(stepDurationMs(H100_LLAMA_8B, [{ context: 0, tokens: 512 }], 1, 1025)).toBeCloseTo(15 + 0.022 * 512 + 1.31e-6 * 512 * 256 + 5.2e-5 * 1025, 9);
  });

  it("maxSeqs bounds the running batch; the rest wait in arrival order", () => {
    const e = engine({ maxSeqs: 1 });
    for (const id of ["x", "y", "z"]) e.submit(request(id, 64, id.charCodeAt(0) * 1000, 4), 0);
    e.advanceTo(0);
    expect(e.metrics()).toMatchObject({ running: 1, waiting: 2 });
    e.advanceTo(END);
    const done = e.takeCompleted();
    expect(done.map((t) => t.id)).toEqual(["x", "y", "z"]);
    expect(done[1].firstTokenMs).toBeGreaterThan(done[0].finishMs);
  });

  it("a request waits for blocks instead of deadlocking, and every request completes", () => {
    // Each request needs ⌈(96 + 64 − 1)/16⌉ = 10 of 16 blocks: only one fits at a time.
    const e = engine({ totalBlocks: 16 });
    for (let i = 0; i < 4; i++) e.submit(request(`r${i}`, 96, i * 10_000, 64), 0);
    e.advanceTo(0);
    expect(e.metrics()).toMatchObject({ running: 1, waiting: 3 });
    e.advanceTo(END);
    const done = e.takeCompleted();
    expect(done.map((t) => t.id)).toEqual(["r0", "r1", "r2", "r3"]);
    expect(done.every((t) => t.outputTokens === 64)).toBe(true);
  });

  it("rejects requests it could never run, or that are malformed", () => {
    const e = engine({ totalBlocks: 4 });
    expect(() => e.submit(request("big", 64, 0, 2), 0)).toThrow(/blocks/);
    expect(() => e.submit(request("zero", 16, 0, 0), 0)).toThrow(/maxTokens/);
    expect(() => e.submit({ ...request("keys", 32), promptKeys: [] }, 0)).toThrow(/keys/);
    e.submit(request("ok", 16), 0);
    expect(() => e.submit(request("ok", 16), 0)).toThrow(/twice/);
  });
});

describe("SimReplicaEngine: cache, events, metrics", () => {
  it("evicts the least recently freed blocks first and reports them", () => {
    // 8 blocks; a then b use 2 blocks each and finish; c needs 6: the 4 never-used blocks, then a's.
    const e = engine({ totalBlocks: 8 });
    const [a, b] = [request("a", 32, 0), request("b", 32, 1000)];
    runAlone(e, a, 0);
    runAlone(e, b, 100);
    e.takeKvEvents();
    runAlone(e, request("c", 96, 2000), 200);
    const removed = e.takeKvEvents().filter((ev) => ev.type === "removed");
    expect(removed).toEqual([{ type: "removed", keys: [a.promptKeys[1], a.promptKeys[0]] }]); // a's tail first
    expect(e.cachedPrefix(b.promptKeys)).toBe(2);
    expect(e.cachedPrefix(a.promptKeys)).toBe(0);
  });

  it("reports prompt and generated blocks as one chain, each block once, in router keys", () => {
    const e = engine();
    const out = Uint32Array.from({ length: 30 }, (_, i) => 90_000 + i);
    const r = request("g", 40, 0, 30, out);
    runAlone(e, r, 0);
    const events = e.takeKvEvents() as Extract<EngineKvEvent, { type: "stored" }>[];
    const kv = Uint32Array.from([...r.prompt, ...out.subarray(0, 29)]); // the last sampled token has no KV
    const expected = blockKeys(kv, BS, ROOT);
    expect(expected).toHaveLength(4);
    expect(events.flatMap((ev) => ev.keys)).toEqual(expected);
    expect(events.map((ev) => ev.parent)).toEqual([null, expected[1], expected[2]]);
    expect(Buffer.from(events[1].tokens.buffer, events[1].tokens.byteOffset, events[1].tokens.byteLength)).toEqual(Buffer.from(kv.slice(32, 48).buffer));
    expect(expected.every((k) => e.holds(k))).toBe(true);
  });

  it("counts prefix queries and hits, KV usage and busy time", () => {
    const e = engine({ totalBlocks: 100 });
    runAlone(e, request("a", 160), 0);
    e.submit(request("b", 160, 0, 50), 1000);
    e.advanceTo(1000);
    const m = e.metrics();
    expect(m).toMatchObject({ running: 1, waiting: 0, prefixQueryTokens: 320, prefixHitTokens: 144 });
    expect(m.kvUsage).toBeCloseTo(10 / 100, 9); // 9 hit blocks + the recomputed last block (the first output has no KV yet)
    e.advanceTo(END);
    expect(e.metrics().kvUsage).toBe(0);
    expect(e.metrics().busyMs).toBeGreaterThan(0);
  });

  it("streams: outputsBy counts only tokens of steps that have ended", () => {
    const e = engine();
    e.submit(request("s", 100, 0, 5), 0);
    e.advanceTo(0);
    const end = e.nextStepMs()!;
    expect(e.outputsBy("s", end - 0.001)).toBe(0);
    expect(e.outputsBy("s", end)).toBe(1);
    expect(e.takeFirstTokens()).toEqual([{ id: "s", atMs: end, cachedTokens: 0 }]);
  });

  it("is deterministic", () => {
    const run = () => {
      const e = engine({ totalBlocks: 64, maxBatchedTokens: 256 });
      for (let i = 0; i < 20; i++) e.submit(request(`q${i}`, 100 + 37 * i, (i % 3) * 5000, 1 + (i % 7)), i * 3);
      e.advanceTo(END);
      return { done: e.takeCompleted(), events: e.takeKvEvents(), metrics: e.metrics() };
    };
    expect(run()).toEqual(run());
  });
});
