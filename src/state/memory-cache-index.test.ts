import { describe, expect, it } from "vitest";
import { chainOf, describeCacheIndexContract } from "./cache-index.contract";
import { MemoryCacheIndex } from "./memory-cache-index";

describeCacheIndexContract("memory", async () => new MemoryCacheIndex({ maxEntries: 1_000_000 }));

describe("MemoryCacheIndex specifics", () => {
  it("bounds memory: keeps at most maxEntries keys, dropping the least recently stored", async () => {
    const index = new MemoryCacheIndex({ maxEntries: 100 });
    const chain = chainOf(150);
    await index.add("w1", chain.slice(0, 100));
    await index.add("w1", [chain[0]]); // refresh block 0 so it survives
    await index.add("w1", chain.slice(100, 150));
    const stats = await index.stats();
    expect(stats.entries).toBe(100);
    expect(stats.workers.w1.blocks).toBe(100);
    expect(Object.fromEntries(await index.lookup(chain.slice(0, 2), ["w1"]))).toEqual({ w1: 1 });
    expect(Object.fromEntries(await index.lookup(chain.slice(100), ["w1"]))).toEqual({ w1: 50 });
  });

  it("uses the injected clock for speculative expiry, and sweepExpired removes them", async () => {
    let now = 1_000;
    const index = new MemoryCacheIndex({ maxEntries: 10, now: () => now });
    const chain = chainOf(3);
    await index.addSpeculative("w1", chain, 500);
    now = 1_499;
    expect(index.lookupNow(chain, ["w1"]).get("w1")).toBe(3);
    now = 1_500;
    expect(index.sweepExpired()).toBe(3);
    expect((await index.stats()).entries).toBe(0);
  });

  it("extends a speculative entry's expiry when speculated again", async () => {
    let now = 0;
    const index = new MemoryCacheIndex({ maxEntries: 10, now: () => now });
    const [a] = chainOf(1);
    await index.addSpeculative("w1", [a], 100);
    now = 90;
    await index.addSpeculative("w1", [a], 100);
    now = 150;
    expect(index.lookupNow([a], ["w1"]).get("w1")).toBe(1);
    now = 190;
    expect(index.lookupNow([a], ["w1"]).get("w1")).toBe(0);
  });
});
