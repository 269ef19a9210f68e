/** The simulator's vLLM-native stream, read by the router's own decoder, replay client and subscriber. */
import { afterEach, describe, expect, it } from "vitest";
import { blockKeys, chainRoot } from "../prefix/block-keys";
import { decodeKvEventBatch } from "../ingest/vllm-kv-events";
import { requestReplay } from "../ingest/zmq-replay-client";
import { ZmqKvSubscriber } from "../ingest/zmq-kv-subscriber";
import { MemoryCacheIndex } from "../state/memory-cache-index";
import { SimReplicaEngine } from "./replica-engine";
import { H100_LLAMA_8B, type EngineKvEvent } from "./replica-model";
import { encodeKvEventBatch, ZmqKvPublisher } from "./zmq-kv-publisher";

const BS = 16;
const NS = { hashSeed: "zmq-test", model: "qwen3" };
const ROOT = chainRoot(NS);
const tokens = (n: number, base: number) => Uint32Array.from({ length: n }, (_, i) => base + i);

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe("encodeKvEventBatch", () => {
  it("is vLLM's map encoding, and the router's decoder reads it back exactly", () => {
    const keys = blockKeys(tokens(48, 7), BS, ROOT);
    const events: EngineKvEvent[] = [
      { type: "stored", keys: keys.slice(0, 2), parent: null, tokens: tokens(32, 7) },
      { type: "stored", keys: keys.slice(2), parent: keys[1], tokens: tokens(16, 39) },
      { type: "removed", keys: [keys[2]] },
      { type: "cleared" },
    ];
    const decoded = decodeKvEventBatch(encodeKvEventBatch(events, BS, 1234.5, 0));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    const hash = (k: string) => `i:${BigInt(`0x${k}`)}`;
    expect(decoded.batch).toMatchObject({ ts: 1234.5, dpRank: 0, unknownEvents: 0 });
    expect(decoded.batch.events).toEqual([
      { type: "BlockStored", blockHashes: keys.slice(0, 2).map(hash), parentBlockHash: null, tokenIds: [...tokens(32, 7)], blockSize: BS, loraId: null, loraName: null, medium: "GPU", groupIdx: null, kvCacheSpecKind: null },
      { type: "BlockStored", blockHashes: [hash(keys[2])], parentBlockHash: hash(keys[1]), tokenIds: [...tokens(16, 39)], blockSize: BS, loraId: null, loraName: null, medium: "GPU", groupIdx: null, kvCacheSpecKind: null },
      { type: "BlockRemoved", blockHashes: [hash(keys[2])], medium: "GPU", groupIdx: null },
      { type: "AllBlocksCleared" },
    ]);
  });
});

describe("ZmqKvPublisher", () => {
  it("feeds the router's ZmqKvSubscriber the engine's keys, replaying what the slow joiner missed", async () => {
    const pub = await ZmqKvPublisher.start({ endpoint: "tcp://127.0.0.1:*", replayEndpoint: "tcp://127.0.0.1:*", topic: "kv", blockSize: BS });
    cleanup.push(() => pub.close());
    const engine = new SimReplicaEngine({ blockSize: BS, totalBlocks: 64, maxBatchedTokens: 64, maxSeqs: 8, cost: H100_LLAMA_8B });
    let removed = 0;
    const submit = (id: string, n: number, base: number, at: number) => {
      const prompt = tokens(n, base);
      engine.submit({ id, prompt, promptKeys: blockKeys(prompt, BS, ROOT), maxTokens: 20, root: ROOT }, at);
      engine.advanceTo(1e9);
      const events = engine.takeKvEvents();
      removed += events.filter((e) => e.type === "removed").length;
      pub.publish(events);
    };
    submit("before-subscribe", 100, 0, 0); // published before anyone listens: only replay can bring it

    const index = new MemoryCacheIndex({ maxEntries: 10_000 });
    const sub = new ZmqKvSubscriber({ workerId: "w", endpoint: pub.endpoint, replayEndpoint: pub.replayEndpoint!, topic: "kv", ...NS, blockSize: BS, apply: (w, ops) => index.apply(w, ops) });
    sub.start();
    cleanup.push(() => sub.stop());
    // Each 300-token request needs 20 of the 64 blocks: later ones evict earlier ones, so removals flow too.
    let i = 0;
    await until("the subscriber's first batch", () => {
      submit(`r${i}`, 300, 10_000 * ++i, i * 1000);
      return sub.stats().batches > 0;
    });
    for (let more = 0; more < 3; more++) submit(`r${i}`, 300, 10_000 * ++i, i * 1000);
    expect(removed).toBeGreaterThan(0);
    await until("every batch", () => sub.stats().lastSeq === pub.seq - 1);
    const held = async () => (await index.stats()).workers.w?.blocks ?? 0;
    expect(await held()).toBe(engine.cachedKeys().length);
    expect(sub.stats()).toMatchObject({ untranslatable: 0, malformed: 0, rejected: 0 });
    const all = await index.lookup(engine.cachedKeys(), ["w"]);
    expect(all.get("w")).toBeGreaterThan(0);
  });

  it("answers replay requests with vLLM's framing and end marker", async () => {
    const pub = await ZmqKvPublisher.start({ endpoint: "tcp://127.0.0.1:*", replayEndpoint: "tcp://127.0.0.1:*", blockSize: BS });
    cleanup.push(() => pub.close());
    for (let n = 0; n < 3; n++) pub.publish([{ type: "cleared" }]);
    pub.publish([]); // nothing to say: no batch, no seq
    const reply = await requestReplay(pub.replayEndpoint!, 1, { timeoutMs: 2000 });
    expect(reply.ok && reply.batches.map((b) => b.seq)).toEqual([1, 2]);
  });
});
