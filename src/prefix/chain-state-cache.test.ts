/**
 * The chain-state cache: the last cached point of a prompt wins, runs are evicted least recently
 * used first within the byte budget, a point registered again moves to the newer run, and a run
 * with no reachable point is dropped at once.
 */
import { describe, expect, it } from "vitest";
import { ChainStateCache, STATE_OVERHEAD, type RunPoint } from "./chain-state-cache";

const keys = (blocks: number, fill: number) => new Uint8Array(blocks * 8).fill(fill);
const point = (key: string, blocks: number): RunPoint => ({ key, tokens: blocks * 16 + 3, blocks, tail: Uint32Array.of(1, 2, 3) });
const runBytes = (blocks: number, points: readonly RunPoint[]) => blocks * 8 + points.reduce((s, p) => s + STATE_OVERHEAD + 2 * p.key.length + 4 * p.tail.length, 0);

describe("ChainStateCache", () => {
  it("returns the last cached point of a prompt, with its prefix of the run's keys", () => {
    const cache = new ChainStateCache(1 << 20);
    cache.put(keys(4, 7), [point("a", 1), point("b", 4)]);
    const found = cache.last(["a", "b", "c"]);
    expect(found?.at).toBe(1);
    expect(found?.state.keys.length).toBe(32);
    expect(found?.state.tokens).toBe(67);
    expect(cache.last(["x", "a"])?.at).toBe(1);
    expect(cache.last(["x", "y"])).toBeNull();
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 1 });
  });

  it("evicts the least recently used run past the budget and never keeps a run bigger than it", () => {
    const one = [point("a1", 2)];
    const cache = new ChainStateCache(2 * runBytes(2, one) + 10);
    cache.put(keys(2, 1), [point("a1", 2)]);
    cache.put(keys(2, 2), [point("b1", 2)]);
    cache.last(["a1"]); // a is now the most recent
    cache.put(keys(2, 3), [point("c1", 2)]);
    expect(cache.last(["b1"])).toBeNull();
    expect(cache.last(["a1"])).not.toBeNull();
    expect(cache.last(["c1"])).not.toBeNull();
    cache.put(keys(1000, 4), [point("huge", 1000)]);
    expect(cache.last(["huge"])).toBeNull();
    expect(cache.stats().bytes).toBeLessThanOrEqual(2 * runBytes(2, one) + 10);
  });

  it("moves a point registered again to the newer run and drops a run left with no point", () => {
    const cache = new ChainStateCache(1 << 20);
    cache.put(keys(2, 1), [point("shared", 2)]);
    const bytesOne = cache.stats().bytes;
    cache.put(keys(3, 2), [point("shared", 2), point("longer", 3)]);
    expect(cache.last(["shared"])?.state.keys[0]).toBe(2);
    expect(cache.stats().bytes).toBe(runBytes(3, [point("shared", 2), point("longer", 3)])); // the first run is gone
    expect(cache.stats().bytes).toBeGreaterThan(bytesOne);
  });
});
