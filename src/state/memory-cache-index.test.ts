import { describe, expect, it } from "vitest";
import { blockKeyBytes, chainRoot, keyChain } from "../prefix/block-keys";
import { chainOf, describeCacheIndexContract } from "./cache-index.contract";
import { MemoryCacheIndex } from "./memory-cache-index";

describeCacheIndexContract("memory", async () => new MemoryCacheIndex({ maxEntries: 1_000_000 }));

const run = async (index: MemoryCacheIndex, chain: string[], worker = "w1") => (await index.lookup(chain, [worker])).get(worker);

describe("MemoryCacheIndex specifics", () => {
  it("bounds memory: keeps at most maxEntries blocks, evicting a chain from its tail", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 100 });
    const chain = chainOf(150);
    await index.add("w1", chain); // 50 over the bound
    const stats = await index.stats();
    expect(stats.entries).toBe(100);
    expect(stats.workers.w1.blocks).toBe(100);
    // What survives is the chain's head: still a reachable leading run, no unreachable tail.
    expect(await run(index, chain)).toBe(100);
  });

  it("a looked-up chain outlives one that was not, and its head outlives its tail", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 100 });
    const [hot, cold, fresh] = [chainOf(40, "hot"), chainOf(40, "cold"), chainOf(40, "fresh")];
    await index.add("w1", hot);
    await index.add("w1", cold);
    expect(await run(index, hot)).toBe(40); // refreshes hot, head newest
    await index.add("w1", fresh); // 20 blocks over: taken from cold's tail
    expect(await run(index, hot)).toBe(40);
    expect(await run(index, cold)).toBe(20);
    expect(await run(index, fresh)).toBe(40);
  });

  it("a store that refreshes a chain's head keeps it: blocks are evicted least recently used first", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 10 });
    const chain = chainOf(10);
    const other = chainOf(5, "other");
    await index.add("w1", chain);
    await index.add("w2", chain.slice(0, 5)); // the head is now the newest
    await index.add("w1", other);
    expect(await run(index, chain, "w1")).toBe(5);
    expect(await run(index, chain, "w2")).toBe(5);
  });

  it("a chain extended by a later store (parent given) loses its tail first, not its head", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 60 });
    const chain = chainOf(50);
    const other = chainOf(20, "other");
    await index.apply("w1", [{ op: "add", keys: chain.slice(0, 30) }]);
    // vLLM stores the next turn's blocks later, naming their parent: the head is not refreshed.
    await index.apply("w1", [{ op: "add", keys: chain.slice(30), parent: chain[29] }]);
    await index.add("w1", other); // 10 blocks over the bound
    expect(await run(index, chain)).toBe(40); // the extension's last 10 went, the head stayed
    expect(await run(index, other)).toBe(20);
    // The same without the parent (the old behaviour) evicts the head's tail end, leaving
    // chain[20..29] gone and the extension unreachable: only 20 blocks of the chain match.
    const unlinked = new MemoryCacheIndex({ maxEntries: 60 });
    await unlinked.apply("w1", [{ op: "add", keys: chain.slice(0, 30) }]);
    await unlinked.apply("w1", [{ op: "add", keys: chain.slice(30) }]);
    await unlinked.add("w1", other);
    expect(await run(unlinked, chain)).toBe(20);
  });

  it("a lookup that continues a chain (parent given) keeps what it reaches older than the chain's head", async () => {
    const lookedUpInTwo = async (parent: boolean) => {
      const index = new MemoryCacheIndex({ maxEntries: 60 });
      const chain = chainOf(50);
      const other = chainOf(20, "other");
      await index.add("w1", chain);
      // A decision looks up the prefix ahead, then the rest for the workers holding all of it.
      expect(await run(index, chain.slice(0, 40))).toBe(40);
      const rest = await index.lookup(chain.slice(40), ["w1"], parent ? chain[39] : undefined);
      expect(rest.get("w1")).toBe(10);
      await index.add("w1", other); // 10 blocks over the bound
      return { chain: await run(index, chain), other: await run(index, other) };
    };
    // The rest went just older than the head: the tail is evicted, the head kept.
    expect(await lookedUpInTwo(true)).toEqual({ chain: 40, other: 20 });
    // Without the parent the rest became the newest of all: the head's end went, leaving it unreachable.
    expect(await lookedUpInTwo(false)).toEqual({ chain: 30, other: 20 });
  });

  it("a continuation whose parent is not in the index is evicted first (no lookup can reach it)", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 20 });
    const chain = chainOf(20);
    const orphan = chainOf(20, "orphan");
    await index.add("w1", chain.slice(0, 10));
    await index.apply("w1", [{ op: "add", keys: orphan.slice(10), parent: orphan[9] }]); // orphan[0..9] never stored
    await index.apply("w1", [{ op: "add", keys: chain.slice(10), parent: chain[9] }]); // 10 over the bound
    expect(await run(index, chain)).toBe(20);
    expect((await index.stats()).entries).toBe(20);
    expect(await run(index, orphan.slice(10))).toBe(0); // evicted, not just unreachable
  });

  it("a continuation applied in slices keeps chain order across the slices", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 40_010 });
    const chain = chainOf(40_000);
    await index.add("w1", chain.slice(0, 10));
    await index.apply("w1", [{ op: "add", keys: chain.slice(10), parent: chain[9] }]); // > one slice
    await index.add("w1", chainOf(20, "other")); // 10 over: the chain's last 10 go
    expect(await run(index, chain)).toBe(39_990);
  });

  it("uses the injected clock for speculative expiry, and sweepExpired removes them", async () => {
    let now = 1_000;
    const index = new MemoryCacheIndex({ maxEntries: 10, now: () => now });
    const chain = chainOf(3);
    await index.addSpeculative("w1", chain, 500);
    now = 1_499;
    expect(index.lookupNow(chain, ["w1"]).get("w1")).toBe(3);
    expect(await index.sweepExpired()).toBe(0);
    now = 1_500;
    expect(await index.sweepExpired()).toBe(3);
    expect((await index.stats()).entries).toBe(0);
    expect(await index.sweepExpired()).toBe(0);
  });

  it("extends a speculative entry's expiry when speculated again; a sweep keeps the extended one", async () => {
    let now = 0;
    const index = new MemoryCacheIndex({ maxEntries: 10, now: () => now });
    const [a] = chainOf(1);
    await index.addSpeculative("w1", [a], 100);
    now = 90;
    await index.addSpeculative("w1", [a], 100);
    now = 150;
    expect(await index.sweepExpired()).toBe(0);
    expect(index.lookupNow([a], ["w1"]).get("w1")).toBe(1);
    now = 190;
    expect(await index.sweepExpired()).toBe(1);
    expect(index.lookupNow([a], ["w1"]).get("w1")).toBe(0);
  });

  it("sweeps a wave of expiries in slices that yield, keeping what a store extended meanwhile", async () => {
    let now = 0;
    const index = new MemoryCacheIndex({ maxEntries: 1_000_000, now: () => now });
    const chains = [chainOf(20_000, "a"), chainOf(20_000, "b"), chainOf(20_000, "c")];
    for (const [i, chain] of chains.entries()) await index.addSpeculative(`w${i}`, chain, 1_000);
    now = 1_000;
    const speculative = async () => Object.values((await index.stats()).workers).reduce((n, w) => n + w.speculative, 0);
    const sweeping = index.sweepExpired();
    // Between two slices: part of the wave is gone, and a store extends one chain's entries.
    const between = await new Promise<number>((resolve) => setImmediate(() => void speculative().then(resolve)));
    await index.addSpeculative("w2", chains[2], 1_000);
    expect(await sweeping).toBeLessThan(60_000);
    expect(between).toBeGreaterThan(0);
    expect(between).toBeLessThan(60_000);
    expect(await speculative()).toBe(20_000);
    expect(index.lookupNow(chains[2], ["w0", "w1", "w2"]).get("w2")).toBe(20_000);
  });

  it("a large resync is applied in slices that yield, atomically for lookups, and later calls wait for it", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 1_000_000 });
    const before = chainOf(10, "before");
    const after = chainOf(40_000, "after");
    await index.add("w1", before);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const replaced = index.replaceWorker("w1", after);
    const added = index.add("w1", before.slice(0, 1)); // issued after: must apply after
    const seen: number[] = [];
    while (ticks < 2) {
      seen.push((await index.lookup(before, ["w1"])).get("w1")!, (await index.lookup(after, ["w1"])).get("w1")!);
      await new Promise((r) => setImmediate(r));
    }
    await replaced;
    await added;
    clearInterval(ticker);
    expect(ticks).toBeGreaterThanOrEqual(2); // timers ran while the resync was in progress
    expect(seen.slice(0, 2)).toEqual([10, 0]); // the old set until the swap, never half of the new
    expect(await run(index, after)).toBe(40_000);
    expect(await run(index, before)).toBe(1);
    expect((await index.stats()).workers.w1).toEqual({ blocks: 40_001, speculative: 0 });
  });

  it("a chain carrying its keys' values (keyChain) finds what the same keys as strings find", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 1_000_000 });
    const root = chainRoot({ hashSeed: "s", model: "m" });
    const bytes = blockKeyBytes(Array.from({ length: 16 * 300 }, (_, i) => i % 5000), 16, root);
    const chain = keyChain(bytes);
    await index.add("w1", chain.slice(0, 200)); // stored as plain strings
    await index.addSpeculative("w2", chain, 60_000); // stored through the values
    expect(Object.fromEntries(index.lookupNow(chain, ["w1", "w2"]))).toEqual({ w1: 200, w2: 300 });
    expect(Object.fromEntries(index.lookupNow([...chain], ["w1", "w2"]))).toEqual({ w1: 200, w2: 300 });
    expect((await index.stats()).entries).toBe(300);
  });

  it("a batch larger than one slice is applied in order in slices that yield, and later calls wait for it", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 1_000_000 });
    const big = chainOf(40_000, "batch");
    await index.add("w1", big.slice(0, 5));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    // add 40k, remove the first 5: one batch, in order.
    const applied = index.apply("w1", [{ op: "add", keys: big }, { op: "remove", keys: big.slice(0, 5) }]);
    const readded = index.add("w1", big.slice(0, 1)); // issued after: must apply after the batch
    const seen: number[] = [];
    while (ticks < 2) {
      seen.push((await index.lookup(big.slice(5), ["w1"])).get("w1")!);
      await new Promise((r) => setImmediate(r));
    }
    await applied;
    await readded;
    clearInterval(ticker);
    expect(seen[0]).toBeLessThan(39_995); // a lookup ran between slices (the first slice only)
    expect(await run(index, big.slice(5))).toBe(39_995);
    expect(await run(index, big)).toBe(1); // block 0 re-added after the batch, block 1 removed by it
    expect((await index.stats()).workers.w1).toEqual({ blocks: 39_996, speculative: 0 });
  });

  it("a speculative chain larger than one slice is stored in slices that yield, and later calls wait for it", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 1_000_000 });
    const big = chainOf(40_000, "speculated");
    const stored = index.addSpeculative("w1", big, 60_000);
    const removed = index.remove("w1", big.slice(0, 1)); // issued after: must apply after it
    const seen: number[] = [];
    let done = false;
    void stored.then(() => (done = true));
    while (!done) {
      seen.push((await index.lookup(big.slice(1), ["w1"])).get("w1")!);
      await new Promise((r) => setImmediate(r));
    }
    await removed;
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]).toBeLessThan(39_999); // a lookup ran between slices
    expect(await run(index, big.slice(1))).toBe(39_999);
    expect(await run(index, big)).toBe(0);
    expect((await index.stats()).workers.w1).toEqual({ blocks: 0, speculative: 39_999 });
  });

  it("clearWorker hides the worker at once and frees a large worker in slices", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 1_000_000 });
    const chain = chainOf(40_000, "big");
    await index.add("w1", chain);
    await index.add("w2", chain.slice(0, 5));
    const cleared = index.clearWorker("w1");
    expect(await run(index, chain)).toBe(0);
    await index.add("w1", chain.slice(0, 3)); // a new life for w1 while the old one is freed
    await cleared;
    expect(await run(index, chain)).toBe(3);
    expect(await index.stats()).toEqual({ entries: 5, workers: { w1: { blocks: 3, speculative: 0 }, w2: { blocks: 5, speculative: 0 } } });
  });

  it("many workers on one block: holder sets widen past 32 slots and fold back inline", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 1000 });
    const chain = chainOf(4);
    const workers = Array.from({ length: 70 }, (_, i) => `w${i}`);
    for (const [i, w] of workers.entries()) await index.add(w, chain.slice(0, 1 + (i % 4)));
    const runs = await index.lookup(chain, workers);
    workers.forEach((w, i) => expect(runs.get(w)).toBe(1 + (i % 4)));
    for (const w of workers.slice(1)) await index.clearWorker(w);
    expect(Object.fromEntries(await index.lookup(chain, ["w0", "w1"]))).toEqual({ w0: 1, w1: 0 });
    expect((await index.stats()).entries).toBe(1);
  });

  it("keys that are not 16 hex digits still work (hashed to 64 bits)", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 10 });
    await index.add("w1", ["a", "bé", "0123456789ABCDEF"]);
    expect(await run(index, ["a", "bé", "0123456789abcdef", "zz"])).toBe(3);
  });
});
