import Redis from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, type RedisServer } from "../../e2e/support/redis-server";
import { chainOf, describeCacheIndexContract } from "./cache-index.contract";
import type { IndexOp } from "./cache-index";
import { MemoryCacheIndex } from "./memory-cache-index";
import { indexKeyPrefix, RedisCacheIndex } from "./redis-cache-index";

let server: RedisServer;
let namespaces = 0;
const fresh = () => `t${process.pid}-${namespaces++}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

describeCacheIndexContract("redis", () => RedisCacheIndex.connect({ url: server.url, namespace: fresh() }));

describe("RedisCacheIndex specifics", () => {
  const opened: RedisCacheIndex[] = [];
  const open = async (namespace = fresh(), commandTimeoutMs?: number) => {
    const index = await RedisCacheIndex.connect({ url: server.url, namespace, commandTimeoutMs });
    opened.push(index);
    return index;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((i) => i.close()));
  });

  it("two routers on one Redis see each other's adds and speculation", async () => {
    const ns = fresh();
    const [r1, r2] = [await open(ns), await open(ns)];
    const chain = chainOf(6);
    await r1.add("w1", chain.slice(0, 4));
    await r2.addSpeculative("w2", chain, 60_000);
    expect(Object.fromEntries(await r2.lookup(chain, ["w1", "w2"]))).toEqual({ w1: 4, w2: 6 });
    expect(Object.fromEntries(await r1.lookup(chain, ["w1", "w2"]))).toEqual({ w1: 4, w2: 6 });
    await r1.add("w2", chain.slice(0, 2)); // a store event confirms r2's speculation
    expect((await r2.stats()).workers.w2).toEqual({ blocks: 2, speculative: 4 });
  });

  it("namespaces are isolated", async () => {
    const [m1, m2] = [await open(), await open()];
    const chain = chainOf(3);
    await m1.add("w1", chain);
    expect(Object.fromEntries(await m2.lookup(chain, ["w1"]))).toEqual({ w1: 0 });
    expect((await m2.stats()).entries).toBe(0);
  });

  it("a lookup is one round trip and stops walking when no asked worker still matches", async () => {
    const client = new Redis(server.url);
    const admin = new Redis(server.url);
    const index = new RedisCacheIndex({ client, namespace: fresh() });
    try {
      await index.ready();
      const chain = chainOf(2048, "rt");
      await index.add("w1", chain.slice(0, 10));
      await index.add("w2", chain.slice(0, 3));
      await index.lookup(chain, ["w1"]); // loads the script on this connection
      const sent: string[] = [];
      const original = client.sendCommand.bind(client);
      client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
        sent.push(command.name);
        return (original as (...a: unknown[]) => unknown)(command, ...rest);
      }) as typeof client.sendCommand;
      const before = commandStats(await admin.info("commandstats"));
      const runs = await index.lookup(chain, ["w1", "w2", "w3"]);
      const after = commandStats(await admin.info("commandstats"));
      expect(Object.fromEntries(runs)).toEqual({ w1: 10, w2: 3, w3: 0 });
      expect(sent).toEqual(["evalsha"]);
      expect((after.evalsha ?? 0) - (before.evalsha ?? 0)).toBe(1);
      // Blocks 0..10 are read in two MGET chunks of buckets (8, then 16 blocks); a full walk would take 12.
      expect((after.mget ?? 0) - (before.mget ?? 0)).toBe(2);
    } finally {
      await index.close();
      client.disconnect();
      admin.disconnect();
    }
  });

  it("lookups drop expired speculation lazily; sweepExpired drops the rest in bounded steps", async () => {
    const index = await open();
    const chain = chainOf(5);
    await index.addSpeculative("w1", chain.slice(0, 2), 100);
    await index.addSpeculative("w2", chain, 100);
    await index.add("w3", chain.slice(0, 1));
    await sleep(200);
    expect(Object.fromEntries(await index.lookup(chain, ["w1"]))).toEqual({ w1: 0 });
    expect((await index.stats()).workers.w1?.speculative).toBe(1); // block 0 dropped, block 1 not yet
    expect(await index.sweepExpired(3)).toBe(3);
    expect(await index.sweepExpired(3)).toBe(3);
    expect(await index.sweepExpired(3)).toBe(0);
    const stats = await index.stats();
    expect(stats).toEqual({ entries: 1, workers: { w3: { blocks: 1, speculative: 0 } } });
  });

  it("a lookup dropping several expired entries of one block keeps counts and keys exact", async () => {
    const index = await open();
    const admin = new Redis(server.url);
    try {
      const [a, b] = chainOf(2, "multi");
      for (const w of ["w1", "w2", "w3"]) await index.addSpeculative(w, [a, b], 100);
      await index.add("w4", [b]);
      await sleep(200);
      expect(Object.fromEntries(await index.lookup([a, b], ["w1", "w2", "w3"]))).toEqual({ w1: 0, w2: 0, w3: 0 });
      expect(Object.fromEntries(await index.lookup([b], ["w1", "w2", "w3", "w4"]))).toEqual({ w1: 0, w2: 0, w3: 0, w4: 1 });
      expect((await readLayout(index.namespace)).blocks.has(a)).toBe(false); // its last bit went: deleted
      expect(await index.stats()).toEqual({ entries: 1, workers: { w4: { blocks: 1, speculative: 0 } } });
      expect(await admin.zcard(`${indexKeyPrefix(index.namespace)}:spec`)).toBe(0);
    } finally {
      admin.disconnect();
    }
  });

  it("speculating again extends the expiry; a shorter ttl does not shorten it", async () => {
    const index = await open();
    const [a] = chainOf(1);
    await index.addSpeculative("w1", [a], 300);
    await index.addSpeculative("w1", [a], 50);
    await sleep(150);
    expect((await index.lookup([a], ["w1"])).get("w1")).toBe(1);
    await sleep(250);
    expect((await index.lookup([a], ["w1"])).get("w1")).toBe(0);
  });

  it("purgeIdleWorkers clears workers whose last own report is old", async () => {
    const index = await open();
    const chain = chainOf(3);
    await index.add("old", chain);
    await sleep(120);
    await index.add("fresh", chain.slice(0, 1));
    await index.addSpeculative("old", chain, 60_000); // speculation is not a report from "old"
    expect(await index.purgeIdleWorkers(100)).toEqual(["old"]);
    expect(Object.fromEntries(await index.lookup(chain, ["old", "fresh"]))).toEqual({ old: 0, fresh: 1 });
    expect(await index.stats()).toEqual({ entries: 1, workers: { fresh: { blocks: 1, speculative: 0 } } });
  });

  it("markReported restarts a worker's liveness clock without touching its entries", async () => {
    const index = await open();
    const chain = chainOf(3);
    await index.add("heartbeats-only", chain);
    await index.add("silent", chain);
    await sleep(120);
    await index.markReported("heartbeats-only");
    await index.markReported("never-stored"); // no slot: nothing to keep, nothing created
    expect(await index.purgeIdleWorkers(100)).toEqual(["silent"]);
    expect(Object.fromEntries(await index.lookup(chain, ["heartbeats-only", "silent"]))).toEqual({ "heartbeats-only": 3, silent: 0 });
    expect(await index.stats()).toEqual({ entries: 3, workers: { "heartbeats-only": { blocks: 3, speculative: 0 } } });
  });

  it("matches the memory backend over random batches from 70 workers (bitmaps span 9 bytes)", async () => {
    const redis = await open();
    const memory = new MemoryCacheIndex({ maxEntries: 1_000_000 });
    const chains = [chainOf(40, "x"), chainOf(40, "y"), chainOf(40, "zz")];
    const workers = Array.from({ length: 70 }, (_, i) => `worker-${i}`);
    let seed = 7;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const pick = () => chains[rand(3)].slice(rand(3) === 0 ? rand(10) : 0, 10 + rand(31));
    for (let round = 0; round < 300; round++) {
      const worker = workers[rand(workers.length)];
      const kind = rand(10);
      if (kind === 0) {
        const keys = pick();
        await Promise.all([redis.addSpeculative(worker, keys, 60_000), memory.addSpeculative(worker, keys, 60_000)]);
      } else {
        const ops: IndexOp[] = kind === 1 ? [{ op: "clear" }] : [{ op: "add", keys: pick() }, { op: "remove", keys: pick().slice(0, rand(4)) }];
        await Promise.all([redis.apply(worker, ops), memory.apply(worker, ops)]);
      }
    }
    for (const chain of chains) {
      expect(Object.fromEntries(await redis.lookup(chain, workers))).toEqual(Object.fromEntries(await memory.lookup(chain, workers)));
    }
    const [rs, ms] = [await redis.stats(), await memory.stats()];
    expect(rs.entries).toBe(ms.entries);
    const nonEmpty = Object.fromEntries(Object.entries(ms.workers).filter(([, w]) => w.blocks + w.speculative > 0));
    expect(rs.workers).toEqual(nonEmpty);
    await expectConsistentLayout(redis.namespace, rs.entries);
  });

  it("a cleared worker's slot is reused by the next new worker without stale bits", async () => {
    const index = await open();
    const chain = chainOf(4);
    await index.add("a", chain);
    await index.add("b", chain.slice(0, 1));
    await index.clearWorker("a");
    await index.add("c", chain.slice(0, 2)); // takes a's freed slot
    expect(Object.fromEntries(await index.lookup(chain, ["a", "b", "c"]))).toEqual({ a: 0, b: 1, c: 2 });
    expect((await index.stats()).entries).toBe(2);
  });

  it("a batch with a malformed op list changes nothing", async () => {
    const index = await open();
    const [a] = chainOf(1);
    const scripts = index as unknown as { scripts: { prefixRouterApply: (...a: unknown[]) => Promise<unknown> } };
    const call = scripts.scripts.prefixRouterApply(`${indexKeyPrefix(index.namespace)}:stats`, `${indexKeyPrefix(index.namespace)}:spec`, [
      indexKeyPrefix(index.namespace), "w1", "A", Buffer.from(a, "hex"), "X",
    ]);
    await expect(call).rejects.toThrow(/unknown op/);
    expect((await index.lookup([a], ["w1"])).get("w1")).toBe(0);
  });

  it("a batch or resync far past what one script may hold applies within a short command timeout (issue 11)", async () => {
    // Before: one script per call, ~5 µs of Redis per key: 300k keys held Redis for seconds, the
    // call rejected at its timeout, and Redis applied it anyway.
    const index = await open(fresh(), 1000); // the default commandTimeoutMs
    const keys = chainOf(300_000, "huge");
    await index.apply("w1", [{ op: "add", keys }]);
    expect((await index.stats()).workers.w1).toEqual({ blocks: 300_000, speculative: 0 });
    await index.replaceWorker("w2", keys);
    expect((await index.stats()).workers.w2).toEqual({ blocks: 300_000, speculative: 0 });
    await index.clearWorker("w1");
    expect((await index.lookup(keys.slice(0, 3), ["w1", "w2"])).get("w2")).toBe(3);
    expect((await index.stats()).entries).toBe(300_000);
  }, 60_000);

  it("a resync is swapped in whole: concurrent lookups see the old entries or all of the new", async () => {
    const index = await open();
    const [old, next] = [chainOf(40, "old"), chainOf(3000, "next")];
    await index.add("w1", old);
    await index.addSpeculative("w1", next.slice(0, 5), 60_000);
    let done = false;
    const resync = index.replaceWorker("w1", next).then(() => (done = true));
    const seen = new Set<string>();
    while (!done) {
      const runs = await Promise.all([index.lookup(old, ["w1"]), index.lookup(next, ["w1"])]);
      seen.add(`${runs[0].get("w1")}/${runs[1].get("w1")}`);
    }
    await resync;
    for (const s of seen) expect(["40/5", "0/3000"]).toContain(s);
    expect(Object.fromEntries(await index.lookup(next, ["w1"]))).toEqual({ w1: 3000 });
    expect((await index.stats()).workers).toEqual({ w1: { blocks: 3000, speculative: 0 } });
    await expectConsistentLayout(index.namespace, 3000);
  });

  it("a clear left half done (the router stopped) is finished by maintain(), and the slot is reused clean", async () => {
    const index = await open();
    const admin = new Redis(server.url);
    try {
      const chain = chainOf(2500, "orphan");
      await index.add("a", chain);
      await index.add("b", chain.slice(0, 2));
      await index.addSpeculative("a", chainOf(3, "spec"), 60_000);
      const scripts = index as unknown as { scripts: { prefixRouterApply: (...a: unknown[]) => Promise<unknown> } };
      const tag = indexKeyPrefix(index.namespace);
      await scripts.scripts.prefixRouterApply(`${tag}:stats`, `${tag}:spec`, [tag, "a", "C"]); // detach, no drain
      expect((await index.lookup(chain, ["a", "b"])).get("a")).toBe(0);
      expect(await admin.hlen(`${tag}:drain`)).toBe(1);
      await index.maintain();
      expect(await admin.hlen(`${tag}:drain`)).toBe(0);
      await index.add("c", chain.slice(0, 1)); // takes a's slot again
      expect(Object.fromEntries(await index.lookup(chain, ["a", "b", "c"]))).toEqual({ a: 0, b: 2, c: 1 });
      expect(await index.stats()).toEqual({ entries: 2, workers: { b: { blocks: 2, speculative: 0 }, c: { blocks: 1, speculative: 0 } } });
      await expectConsistentLayout(index.namespace, 2);
    } finally {
      admin.disconnect();
    }
  });

  it("the drain cursor frees a detached slot only after a full pass, in scripts of bounded size", async () => {
    const index = await open();
    const admin = new Redis(server.url);
    try {
      const tag = indexKeyPrefix(index.namespace);
      const scripts = index as unknown as { scripts: Record<string, (...a: unknown[]) => Promise<unknown>> };
      const call = (name: string, args: unknown[]) => scripts.scripts[name](`${tag}:stats`, `${tag}:spec`, [tag, ...args]);
      const [ka, kb, kc] = [chainOf(3000, "pa"), chainOf(3000, "pb"), chainOf(50, "pc")];
      await index.add("a", ka);
      await index.add("b", kb);
      await index.add("c", kc);
      await index.addSpeculative("b", chainOf(20, "pspec"), 60_000);
      await call("prefixRouterApply", ["a", "C"]); // detach a; nothing drained yet
      const step = async () => (await call("prefixRouterDrain", [400, 64])) as [number, number];
      const [records] = await step();
      expect(records).toBeLessThanOrEqual(400 + 64 * 4); // the limit plus one window's records at most
      await call("prefixRouterApply", ["b", "C"]); // detach b mid-pass: its own pass starts here
      let steps = 1;
      let left = 2;
      while (left === 2) [, left] = (++steps, await step());
      expect(left).toBe(1); // a's pass ended first
      expect(await admin.hkeys(`${tag}:drain`)).toEqual(["1"]); // b's slot still draining
      expect(Object.fromEntries(await index.lookup(kb, ["a", "b", "c"]))).toEqual({ a: 0, b: 0, c: 0 });
      while (left > 0) [, left] = (++steps, await step());
      expect(steps).toBeGreaterThan(10); // bounded steps, not one long script
      await index.add("d", kc.slice(0, 5)); // takes slot 0 again, clean
      expect(Object.fromEntries(await index.lookup(kc, ["a", "b", "c", "d"]))).toEqual({ a: 0, b: 0, c: 50, d: 5 });
      expect(await index.stats()).toEqual({ entries: 50, workers: { c: { blocks: 50, speculative: 0 }, d: { blocks: 5, speculative: 0 } } });
      expect(await admin.zcard(`${tag}:spec`)).toBe(0);
      await expectConsistentLayout(index.namespace, 50);
    } finally {
      admin.disconnect();
    }
  });

  it("a namespace still holding the previous layout's keys (a rolling upgrade) neither disturbs nor is disturbed", async () => {
    const namespace = fresh();
    const admin = new Redis(server.url);
    try {
      // What a v1 router keeps in the same namespace: slots, counters, a block and its worker set.
      const v1 = `{${namespace}}`;
      await admin.hset(`${v1}:slot`, "w1", "5", "w2", "0");
      await admin.hset(`${v1}:stats`, "entries", "7", "nextslot", "6", "c:w1", "7");
      await admin.set(`${v1}:b:0123456789abcdef`, Buffer.from([0x80, 0]));
      await admin.sadd(`${v1}:w:w2`, "0123456789abcdef");
      const before = await admin.keys(`${v1}:*`);
      const index = await open(namespace);
      const chain = chainOf(4);
      await index.add("w1", chain);
      await index.addSpeculative("w2", chain.slice(0, 2), 60_000);
      expect(Object.fromEntries(await index.lookup(chain, ["w1", "w2"]))).toEqual({ w1: 4, w2: 2 });
      expect(await index.stats()).toEqual({ entries: 4, workers: { w1: { blocks: 4, speculative: 0 }, w2: { blocks: 0, speculative: 2 } } });
      await index.clearWorker("w1");
      expect(Object.fromEntries(await index.lookup(chain, ["w1", "w2"]))).toEqual({ w1: 0, w2: 2 });
      // The v1 keys are exactly as they were.
      expect((await admin.keys(`${v1}:*`)).filter((k) => !k.startsWith(indexKeyPrefix(namespace))).sort()).toEqual(before.sort());
      expect(await admin.hgetall(`${v1}:slot`)).toEqual({ w1: "5", w2: "0" });
      expect(await admin.hget(`${v1}:stats`, "entries")).toBe("7");
    } finally {
      admin.disconnect();
    }
  });

  it("rejects the namespace characters that would break the hash tag", () => {
    expect(() => new RedisCacheIndex({ url: server.url, namespace: "a}b" })).toThrow(RangeError);
  });

  it("works in a non-ASCII namespace and rejects keys that cannot be packed", async () => {
    const index = await open(`modèle-${fresh()}`);
    const chain = chainOf(3);
    await index.add("w1", chain);
    expect((await index.lookup(chain, ["w1"])).get("w1")).toBe(3);
    await expect(index.add("w1", ["abc", "abcd"])).rejects.toThrow(RangeError);
    await expect(index.lookup(["é1", "ab"], ["w1"])).rejects.toThrow(RangeError);
    await expect(index.add("w1", [chain[0].toUpperCase()])).rejects.toThrow(RangeError); // one key, one spelling
    await expect(index.apply("w1", [{ op: "add", keys: chain }, { op: "remove", keys: ["zz"] }])).rejects.toThrow(RangeError);
    expect((await index.stats()).workers.w1?.blocks).toBe(3); // checked before anything was sent
  });
});

/** The buckets read back: block key (hex) → value, and per bucket its bitmap bit. */
async function readLayout(namespace: string): Promise<{ blocks: Map<string, Buffer>; unmarked: string[] }> {
  const admin = new Redis(server.url);
  try {
    const tag = indexKeyPrefix(namespace);
    const names = await admin.keysBuffer(`${tag}:h:*`);
    const bitmap = (await admin.getBuffer(`${tag}:nb`)) ?? Buffer.alloc(0);
    const blocks = new Map<string, Buffer>();
    const unmarked: string[] = [];
    for (const name of names) {
      const prefix = name.subarray(name.length - 2);
      const id = prefix.readUInt16BE(0);
      if (id >> 3 >= bitmap.length || ((bitmap[id >> 3] >> (7 - (id & 7))) & 1) === 0) unmarked.push(prefix.toString("hex"));
      const s = (await admin.getBuffer(name))!;
      const width = s[0];
      expect((s.length - 1) % (6 + width)).toBe(0);
      for (let p = 1; p < s.length; p += 6 + width) {
        const key = Buffer.concat([prefix, s.subarray(p, p + 6)]).toString("hex");
        expect(blocks.has(key)).toBe(false);
        blocks.set(key, s.subarray(p + 6, p + 6 + width));
      }
    }
    return { blocks, unmarked };
  } finally {
    admin.disconnect();
  }
}

/**
 * The layout's invariants, read back bucket by bucket: every record has a set bit and there are
 * `entries` of them, each bucket is marked in the bitmap; each attached worker's slot has one bit
 * set (never both) in exactly as many records as its counters say, and no other slot has any;
 * spec ZSET members match speculative bits; nothing is left to drain.
 */
async function expectConsistentLayout(namespace: string, entries: number): Promise<void> {
  const admin = new Redis(server.url);
  try {
    const tag = indexKeyPrefix(namespace);
    const { blocks, unmarked } = await readLayout(namespace);
    expect(blocks.size).toBe(entries);
    expect(unmarked).toEqual([]);
    for (const v of blocks.values()) expect(v.some((byte) => byte !== 0)).toBe(true);
    const bit = (v: Buffer, offset: number) => (offset >> 3 < v.length ? (v[offset >> 3] >> (7 - (offset & 7))) & 1 : 0);
    const slots = await admin.hgetall(`${tag}:slot`);
    const stats = await admin.hgetall(`${tag}:stats`);
    const owned = new Set(Object.values(slots).map(Number));
    let specBits = 0;
    for (const [worker, slotText] of Object.entries(slots)) {
      const slot = Number(slotText);
      const off = 16 * Math.floor(slot / 8) + (slot % 8);
      let [confirmed, speculative] = [0, 0];
      for (const [key, v] of blocks) {
        const [c, sp] = [bit(v, off), bit(v, off + 8)];
        expect(c + sp).toBeLessThanOrEqual(1);
        confirmed += c;
        speculative += sp;
        if (sp) expect(await admin.zscore(`${tag}:spec`, Buffer.concat([Buffer.from(key, "hex"), Buffer.from(worker)]))).not.toBeNull();
      }
      expect([confirmed, speculative]).toEqual([Number(stats[`c:${worker}`] ?? 0), Number(stats[`s:${worker}`] ?? 0)]);
      specBits += speculative;
    }
    for (const v of blocks.values()) {
      for (let slot = 0; slot < 8 * (v.length >> 1); slot++) {
        if (!owned.has(slot)) expect(bit(v, 16 * Math.floor(slot / 8) + (slot % 8)) + bit(v, 16 * Math.floor(slot / 8) + (slot % 8) + 8)).toBe(0);
      }
    }
    expect(await admin.zcard(`${tag}:spec`)).toBe(specBits);
    expect(await admin.hlen(`${tag}:drain`)).toBe(0);
  } finally {
    admin.disconnect();
  }
}

/** INFO commandstats → calls per command name. */
function commandStats(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]] = Number(m[2]);
  return calls;
}
