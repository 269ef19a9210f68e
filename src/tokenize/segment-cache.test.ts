import { describe, expect, it } from "vitest";
import { ENTRY_OVERHEAD, SegmentCache } from "./segment-cache";

const ids = (n: number) => new Uint32Array(n);
const cost = (key: string, n: number) => 2 * key.length + 4 * n + ENTRY_OVERHEAD;

describe("SegmentCache", () => {
  it("counts hits, misses and bytes", () => {
    const cache = new SegmentCache(10_000);
    expect(cache.get("a")).toBeUndefined();
    cache.set("a", ids(3));
    expect(cache.get("a")).toEqual(ids(3));
    expect(cache.stats()).toEqual({ segmentHits: 1, segmentMisses: 1, cachedBytes: cost("a", 3) });
    cache.set("a", ids(5)); // replacing re-accounts
    expect(cache.stats().cachedBytes).toBe(cost("a", 5));
  });

  it("evicts least recently used entries first to stay within budget", () => {
    const cache = new SegmentCache(3 * cost("k1", 10));
    cache.set("k1", ids(10));
    cache.set("k2", ids(10));
    cache.set("k3", ids(10));
    cache.get("k1"); // k2 is now the oldest
    cache.set("k4", ids(10));
    expect(cache.get("k2")).toBeUndefined();
    expect(cache.get("k1")).toBeDefined();
    expect(cache.get("k3")).toBeDefined();
    expect(cache.get("k4")).toBeDefined();
    expect(cache.stats().cachedBytes).toBeLessThanOrEqual(3 * cost("k1", 10));
  });

  it("holds segment cuts in the same budget: their text counts, and they age out with the ids", () => {
    const cuts = { text: "t".repeat(1000), keys: ["a", "b"], ends: Uint32Array.of(500, 1000) };
    const cutsCost = 2 * "c".length + 2 * 1000 + 2 * (2 + 8) + 4 * 2 + ENTRY_OVERHEAD;
    const cache = new SegmentCache(cutsCost + cost("k1", 10));
    cache.setCuts("c", cuts);
    cache.set("k1", ids(10));
    expect(cache.stats().cachedBytes).toBe(cutsCost + cost("k1", 10));
    expect(cache.getCuts("c")).toBe(cuts);
    expect(cache.get("c")).toBeUndefined(); // cuts are not ids
    cache.set("k2", ids(10)); // k1 is the oldest now (the cuts were read)
    expect(cache.get("k1")).toBeUndefined();
    cache.set("k3", ids(10));
    expect(cache.getCuts("c")).toBeUndefined();
    expect(cache.stats().cachedBytes).toBeLessThanOrEqual(cutsCost + cost("k1", 10));
  });

  it("skips entries larger than the budget, and caches nothing with budget 0", () => {
    const small = new SegmentCache(cost("x", 1));
    small.set("x", ids(2));
    expect(small.get("x")).toBeUndefined();
    const off = new SegmentCache(0);
    off.set("", ids(0));
    expect(off.stats().cachedBytes).toBe(0);
  });
});
