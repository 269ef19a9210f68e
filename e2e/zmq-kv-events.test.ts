/**
 * End to end: a fake vLLM publisher (Python, pyzmq + msgpack, vLLM's framing) → ZmqKvSubscriber →
 * a real MemoryCacheIndex. The index must hold exactly the router keys of the published tokens.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { blockKeys, chainRoot, type BlockKey } from "../src/prefix/block-keys";
import { MemoryCacheIndex } from "../src/state/memory-cache-index";
import { ZmqKvSubscriber, type GapReport } from "../src/ingest/zmq-kv-subscriber";

const BS = 16;
const NS = { hashSeed: "e2e-seed", model: "qwen3" };
const TOPIC = "kv-events";
const W = "w1";
const toks = (blocks: number, base: number): number[] => Array.from({ length: blocks * BS }, (_, i) => base + i);
const keysOf = (tokens: number[], lora = ""): BlockKey[] => blockKeys(tokens, BS, chainRoot({ ...NS, lora }));

type Encoding = "array-oldest" | "array" | "map";
type HashKind = "int" | "bytes";
type EventSpec = { stored: { prefix?: number[]; tokens: number[]; block_size?: number; lora_name?: string } } | { removed: { prefix: number[]; blocks: number[] } } | { cleared: Record<string, never> };

/** The Python publisher, driven by JSON lines. */
class FakeVllm {
  private nextId = 0;
  private readonly waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  private constructor(private readonly proc: ChildProcessWithoutNullStreams, readonly pub: string, readonly replay: string) {}

  static async start(): Promise<FakeVllm> {
    const proc = spawn("/usr/bin/python3", [join(__dirname, "support", "vllm-zmq-publisher.py"), TOPIC], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: proc.stdout });
    const ready = await new Promise<Record<string, string>>((resolve, reject) => {
      lines.once("line", (line) => resolve(JSON.parse(line) as Record<string, string>));
      proc.once("exit", (code) => reject(new Error(`publisher exited ${code}: ${stderr}`)));
    });
    const fake = new FakeVllm(proc, ready.pub, ready.replay);
    lines.on("line", (line) => {
      const reply = JSON.parse(line) as Record<string, unknown>;
      fake.waiting.get(reply.id as number)?.(reply);
    });
    return fake;
  }

  command(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin.write(JSON.stringify({ ...cmd, id }) + "\n");
    });
  }

  async publish(events: EventSpec[], encoding: Encoding = "map", hash: HashKind = "int", drop = false): Promise<number> {
    return (await this.command({ cmd: "publish", events, encoding, hash, drop })).seq as number;
  }

  stop(): void {
    this.proc.kill();
  }
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Rig {
  fake: FakeVllm;
  sub: ZmqKvSubscriber;
  index: MemoryCacheIndex;
  gaps: GapReport[];
  /** Publishes and waits until the subscriber has applied that seq. */
  send(events: EventSpec[], encoding?: Encoding, hash?: HashKind): Promise<number>;
  held(keys: BlockKey[]): Promise<number>;
  blocks(): Promise<number>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    await rig.sub.stop();
    rig.fake.stop();
  }
});

async function rig(withReplay: boolean): Promise<Rig> {
  const fake = await FakeVllm.start();
  const index = new MemoryCacheIndex({ maxEntries: 1e6 });
  const gaps: GapReport[] = [];
  const sub = new ZmqKvSubscriber({
    workerId: W, endpoint: fake.pub, replayEndpoint: withReplay ? fake.replay : undefined, topic: TOPIC,
    ...NS, blockSize: BS, apply: (w, ops) => index.apply(w, ops), onGap: (g) => gaps.push(g), replayTimeoutMs: 1000,
  });
  sub.start();
  const r: Rig = {
    fake, sub, index, gaps,
    async send(events, encoding, hash) {
      const seq = await fake.publish(events, encoding, hash);
      await until(`seq ${seq}`, () => (sub.stats().lastSeq ?? -1) >= seq);
      return seq;
    },
    async held(keys) {
      return (await index.lookup(keys, [W])).get(W)!;
    },
    async blocks() {
      return (await index.stats()).workers[W]?.blocks ?? 0;
    },
  };
  rigs.push(r);
  // ZMQ slow joiner: empty batches until one arrives, so that nothing after them is lost.
  await until("subscription", async () => {
    if (sub.stats().batches > 0) return true;
    await fake.publish([]);
    return false;
  });
  gaps.length = 0;
  return r;
}

const combos: { encoding: Encoding; hash: HashKind }[] = [
  { encoding: "array-oldest", hash: "int" },
  { encoding: "array", hash: "int" },
  { encoding: "array", hash: "bytes" },
  { encoding: "map", hash: "int" },
  { encoding: "map", hash: "bytes" },
];

describe("ZmqKvSubscriber against a vLLM-framed publisher", () => {
  it.each(combos)("stores, chains, removes and clears ($encoding, $hash hashes)", async ({ encoding, hash }) => {
    const r = await rig(true);
    const a = toks(3, 100);
    const b = toks(2, 5000);
    const all = keysOf([...a, ...b]);
    await r.send([{ stored: { tokens: a } }], encoding, hash);
    await r.send([{ stored: { prefix: a, tokens: b } }], encoding, hash);
    expect(await r.held(all)).toBe(5);
    expect(await r.blocks()).toBe(5);

    await r.send([{ removed: { prefix: [...a, ...b], blocks: [3, 4] } }], encoding, hash);
    expect(await r.held(all)).toBe(3);
    expect(await r.blocks()).toBe(3);

    await r.send([{ cleared: {} }], encoding, hash);
    expect(await r.blocks()).toBe(0);
    expect(r.sub.stats()).toMatchObject({ untranslatable: 0, rejected: 0, malformed: 0, gaps: 0 });
  });

  it("keys a LoRA adapter's blocks in the adapter's namespace", async () => {
    const r = await rig(true);
    const t = toks(2, 7);
    await r.send([{ stored: { tokens: t, lora_name: "sql-adapter" } }], "array");
    expect(await r.held(keysOf(t, "sql-adapter"))).toBe(2);
    expect(await r.held(keysOf(t))).toBe(0);
  });

  it("detects a sequence gap and fills it through the replay socket", async () => {
    const r = await rig(true);
    const a = toks(2, 1);
    const b = toks(2, 900);
    const c = toks(1, 3000);
    await r.send([{ stored: { tokens: a } }]);
    const clears = r.sub.stats().clears;
    await r.fake.publish([{ stored: { prefix: a, tokens: b } }], "map", "int", true); // lost on the way
    await r.send([{ stored: { tokens: c } }]);
    expect(await r.held(keysOf([...a, ...b]))).toBe(4);
    expect(await r.held(keysOf(c))).toBe(1);
    expect(r.sub.stats()).toMatchObject({ gaps: 1, clears });
    expect(r.gaps).toEqual([expect.objectContaining({ kind: "sequence", recovery: "replay" })]);
  });

  it("without replay, a gap clears the worker and rebuilds from the events that follow", async () => {
    const r = await rig(false);
    const a = toks(2, 1);
    const b = toks(1, 900);
    const c = toks(2, 3000);
    await r.send([{ stored: { tokens: a } }]);
    await r.fake.publish([{ stored: { prefix: a, tokens: b } }], "map", "int", true);
    await r.send([{ stored: { tokens: c } }]);
    expect(await r.held(keysOf(a))).toBe(0);
    expect(await r.held(keysOf(c))).toBe(2);
    expect(await r.blocks()).toBe(2);
    expect(r.gaps).toEqual([expect.objectContaining({ kind: "sequence", recovery: "cleared" })]);
    // b's hashes never arrived: a block stored after it cannot be keyed, and is reported.
    await r.send([{ stored: { prefix: [...a, ...b], tokens: toks(1, 7000) } }]);
    expect(r.sub.stats().untranslatable).toBe(1);
    expect(await r.blocks()).toBe(2);
  });

  it("when the replay buffer no longer reaches the gap, clears and rebuilds from what it holds", async () => {
    const r = await rig(true);
    const a = toks(1, 1);
    const b = toks(1, 200);
    const c = toks(1, 300);
    await r.send([{ stored: { tokens: a } }]);
    await r.fake.publish([{ stored: { tokens: toks(1, 100) } }], "map", "int", true);
    await r.fake.publish([{ stored: { tokens: b } }], "map", "int", true);
    await r.fake.command({ cmd: "trim_buffer", keep: 1 }); // only b is still buffered
    await r.send([{ stored: { tokens: c } }]);
    expect(await r.held(keysOf(a))).toBe(0);
    expect(await r.held(keysOf(b))).toBe(1);
    expect(await r.held(keysOf(c))).toBe(1);
    expect(r.sub.stats()).toMatchObject({ gaps: 1, replayFailures: 1 });
    expect(r.gaps).toEqual([expect.objectContaining({ kind: "sequence", recovery: "cleared" })]);
  });

  it("an engine restart (seq back to 0) drops the old engine's entries", async () => {
    const r = await rig(true);
    const a = toks(2, 1);
    const b = toks(1, 500);
    await r.send([{ stored: { tokens: a } }]);
    await r.send([{ stored: { tokens: toks(1, 40) } }]);
    await r.fake.command({ cmd: "restart" });
    const seq = await r.fake.publish([{ stored: { tokens: b } }]);
    expect(seq).toBe(0);
    await until("restart", () => r.sub.stats().restarts === 1 && r.sub.stats().lastSeq === 0);
    expect(await r.held(keysOf(a))).toBe(0);
    expect(await r.held(keysOf(b))).toBe(1);
    expect(await r.blocks()).toBe(1);
    expect(r.gaps).toEqual([expect.objectContaining({ kind: "restart", recovery: "cleared" })]);
  });

  it("a publisher that goes away (vLLM stopped or crashed) clears the worker at once", async () => {
    const r = await rig(true);
    await r.send([{ stored: { tokens: toks(3, 1) } }]);
    expect(await r.blocks()).toBe(3);
    r.fake.stop(); // the process dies: its sockets close
    await until("the disconnect", () => r.sub.stats().disconnects === 1);
    await until("the worker to be cleared", async () => (await r.blocks()) === 0);
    expect(r.gaps).toEqual([expect.objectContaining({ kind: "disconnect", recovery: "cleared" })]);
  });

  it("stop() aborts a pending replay promptly and leaves the index alone", async () => {
    const fake = await FakeVllm.start();
    const applied: string[] = [];
    const sub = new ZmqKvSubscriber({
      workerId: W, endpoint: fake.pub, replayEndpoint: "tcp://127.0.0.1:9", topic: TOPIC, ...NS, blockSize: BS,
      apply: async (_w, ops) => void applied.push(...ops.map((o) => o.op)), replayTimeoutMs: 30_000,
    });
    sub.start();
    try {
      await fake.publish([], "map", "int", true); // seq 0 never sent: the first message seen is > 0
      await until("a replay in flight", async () => {
        if (sub.stats().replays > 0) return true;
        await fake.publish([]);
        return false;
      });
      const before = applied.length;
      const started = Date.now();
      await sub.stop();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(applied.length).toBe(before);
    } finally {
      fake.stop();
    }
  });

  it("rejects events cut at another block size, and clears on an undecodable payload", async () => {
    const r = await rig(true);
    const a = toks(2, 1);
    await r.send([{ stored: { tokens: a } }]);
    await r.send([{ stored: { tokens: toks(2, 50), block_size: 32 } }]);
    expect(r.sub.stats().rejected).toBe(1);
    expect(await r.blocks()).toBe(2);

    const seq = (await r.fake.command({ cmd: "publish_raw", payload_hex: "c1" })).seq as number;
    await until("malformed", () => r.sub.stats().lastSeq === seq);
    expect(r.sub.stats().malformed).toBe(1);
    expect(await r.blocks()).toBe(0);
  });
});

describe("a worker configured with kvEvents", () => {
  it("is subscribed by the router service, and routing follows its native events", async () => {
    const { startTestRouter, testConfig, chatBody, routerTokens } = await import("./support/router-fixture");
    const fake = await FakeVllm.start();
    const base = testConfig();
    const router = await startTestRouter(
      testConfig({
        hashSeed: NS.hashSeed,
        // A short liveness timeout: vLLM's stream is silent while idle, which must not purge w3.
        ingest: { listen: "127.0.0.1:0", requireAuth: false, livenessTimeoutMs: 300 },
        workers: base.workers.map((w) => (w.id === "w3" ? { id: w.id, address: w.address, models: w.models, kvEvents: fake.pub, kvEventsTopic: TOPIC } : { id: w.id, address: w.address, models: w.models })),
      }),
    );
    try {
      const sub = router.service.events!.subscribers.get("w3")!;
      await until("subscription", async () => {
        if (sub.stats().batches > 0) return true;
        await fake.publish([]);
        return false;
      });
      // The tokens vLLM would have cached for this prompt: the router's own tokenization of it.
      const body = chatBody("You answer questions about the ZMQ path. " + "Background. ".repeat(300), "go");
      const ids = await routerTokens(router.service, body);
      const full = Math.floor(ids.length / BS) * BS;
      const seq = await fake.publish([{ stored: { tokens: Array.from(ids.subarray(0, full)) } }]);
      await until(`seq ${seq}`, () => (sub.stats().lastSeq ?? -1) >= seq);

      const ex = await router.client.process({ path: "/v1/chat/completions", body });
      expect(ex.upstreamHeaders.get("x-prefix-router-worker")).toBe("w3");
      expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toBe("hit");
      expect(ex.upstreamHeaders.get("x-prefix-router-blocks")).toBe(`${full / BS}/${full / BS}`);
      await ex.complete(200);

      await new Promise((res) => setTimeout(res, 1_200)); // idle for 4 liveness timeouts
      expect(router.service.events!.service.staleWorkers().has("w3")).toBe(false);
      expect((await router.service.index.stats()).workers.w3.blocks).toBe(full / BS);
      expect((await router.service.workerStates.get("w3"))?.source).toBe("zmq");
    } finally {
      await router.stop();
      fake.stop();
    }
  });
});
