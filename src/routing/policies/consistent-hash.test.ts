import { describe, expect, it } from "vitest";
import type { WorkerView } from "../worker-view";
import { blockKeyBytes, chainRoot, KEY_BYTES, keyChain } from "../../prefix/block-keys";
import { boundedLoadCap, consistentHash, firstNonSharedBlock } from "./consistent-hash";
import { HashRing } from "./hash-ring";
import { KeyPopularity } from "./key-popularity";
import { mix32, type PopularityView } from "./routing-policy";

const key = (n: number) => n.toString(16).padStart(16, "0");
const chain = (...ns: number[]) => ns.map(key);
const popularity = (counts: Record<string, number>, requests: number): PopularityView => ({ requestsWith: (keys, at) => counts[keys[at]] ?? 0, requests });
const view = (id: string, inFlight = 0): WorkerView => ({ id, address: `${id}:1`, inFlight });

describe("firstNonSharedBlock", () => {
  it.each([
    { name: "nothing seen: block 0", counts: {}, requests: 0, keys: chain(1, 2, 3), expected: 0 },
    { name: "skips a system prompt every request carries", counts: { [key(1)]: 100, [key(2)]: 100, [key(3)]: 3 }, requests: 100, keys: chain(1, 2, 3), expected: 2 },
    { name: "a popular key below minShared is not shared", counts: { [key(1)]: 5 }, requests: 5, keys: chain(1, 2), expected: 0 },
    { name: "under 10% of the window is not shared", counts: { [key(1)]: 90 }, requests: 1000, keys: chain(1, 2), expected: 0 },
    { name: "all shared: the last block", counts: { [key(1)]: 500, [key(2)]: 500 }, requests: 1000, keys: chain(1, 2), expected: 1 },
    { name: "empty chain", counts: {}, requests: 10, keys: [], expected: -1 },
  ])("$name", ({ counts, requests, keys, expected }) => {
    expect(firstNonSharedBlock(keys, popularity(counts, requests), 0.1, 8)).toBe(expected);
  });
});

describe("boundedLoadCap", () => {
  it.each([
    { total: 0, n: 4, c: 1.25, expected: 1 },
    { total: 7, n: 4, c: 1.25, expected: 3 },
    { total: 99, n: 8, c: 1.25, expected: 16 },
    { total: 99, n: 8, c: 1, expected: 13 },
  ])("ceil(c·(m+1)/N): m=$total N=$n c=$c → $expected", ({ total, n, c, expected }) => {
    expect(boundedLoadCap(total, n, c)).toBe(expected);
  });
});

describe("HashRing", () => {
  it("visits every worker once, deterministically", () => {
    const ring = new HashRing(["a", "b", "c", "d"], 50);
    const order = (p: number) => {
      const out: number[] = [];
      ring.walk(p, (w) => (out.push(w), false));
      return out;
    };
    expect(order(12345).sort()).toEqual([0, 1, 2, 3]);
    expect(order(12345)).toEqual(order(12345));
  });

  it("spreads keys roughly evenly with virtual nodes", () => {
    const ring = new HashRing(["a", "b", "c", "d"], 160);
    const hits = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) ring.walk(mix32(i + 1), (w) => (hits[w]++, true));
    for (const h of hits) expect(h).toBeGreaterThan(800);
  });
});

describe("consistentHash policy", () => {
  const workers = (loads: number[]) => loads.map((l, i) => view(`w${i}`, l));

  it("one conversation key always lands on one worker while loads are low", () => {
    const p = consistentHash({ popularity: new KeyPopularity() });
    const picks = new Set([0, 1, 2, 3].map((s) => {
      const d = p.decide({ workers: workers([0, 0, 0, 0]), keys: chain(7, 8 + s), match: null, sequence: s });
      return d.kind === "route" ? d.worker.id : "";
    }));
    expect(picks.size).toBe(1);
  });

  it("moves on clockwise when the home worker is at its cap", () => {
    const p = consistentHash({ popularity: new KeyPopularity() });
    const keys = chain(42);
    const home = p.decide({ workers: workers([0, 0, 0, 0]), keys, match: null, sequence: 0 });
    if (home.kind !== "route") throw new Error("route expected");
    const loads = [0, 0, 0, 0];
    loads[Number(home.worker.id.slice(1))] = 10; // cap = ceil(1.25 · 11 / 4) = 4
    const moved = p.decide({ workers: workers(loads), keys, match: null, sequence: 1 });
    if (moved.kind !== "route") throw new Error("route expected");
    expect(moved.worker.id).not.toBe(home.worker.id);
    expect(moved.guardTripped).toBe(true);
  });
});

describe("KeyPopularity", () => {
  it("counts requests per key over a sliding window", () => {
    const pop = new KeyPopularity({ window: 2 });
    pop.observe(chain(1, 2));
    pop.observe(chain(1, 3));
    expect([pop.requestsWith([key(1)], 0), pop.requestsWith([key(2)], 0), pop.requests]).toEqual([2, 1, 2]);
    pop.observe(chain(4));
    expect([pop.requestsWith([key(1)], 0), pop.requestsWith([key(2)], 0), pop.requestsWith([key(4)], 0), pop.requests]).toEqual([1, 0, 1, 2]);
  });

  it("agrees with a plain count over a sliding window while keys come and go (ids are reused)", () => {
    const pop = new KeyPopularity({ window: 7, maxDepth: 40 });
    const ring: string[][] = [];
    let seed = 12345;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let r = 0; r < 400; r++) {
      // A shared head of 0–5 keys from a small pool, then keys of this request only (and repeats).
      const keys = [...Array.from({ length: rand(6) }, (_, i) => key(i)), ...Array.from({ length: rand(60) }, () => key(1000 + rand(3000)))];
      pop.observe(keys);
      ring.push(keys.slice(0, 40));
      if (ring.length > 7) ring.shift();
      const expected = new Map<string, number>();
      for (const k of ring.flat()) expected.set(k, (expected.get(k) ?? 0) + 1);
      for (const k of [...keys, key(0), key(5), key(999)]) expect(pop.requestsWith([k], 0)).toBe(expected.get(k) ?? 0);
    }
  });

  it("reads a chain's keys by their 64-bit values as it reads their strings", () => {
    const pop = new KeyPopularity({ window: 4 });
    const bytes = blockKeyBytes(Array.from({ length: 64 }, (_, i) => i), 16, chainRoot({ hashSeed: "s", model: "m" }));
    const long = keyChain(bytes);
    const short = keyChain(bytes.subarray(0, 2 * KEY_BYTES));
    pop.observe(long);
    pop.observe([...short]);
    const counts = (keys: readonly string[]) => keys.map((_, i) => pop.requestsWith(keys, i));
    expect(counts(long)).toEqual([2, 2, 1, 1]);
    expect(counts([...long])).toEqual(counts(long));
  });

  it("agrees with a plain count when heads are taken from recent requests (chains with 64-bit values, windows of 1–5)", () => {
    const roots = ["a", "b", "c"].map((hashSeed) => blockKeyBytes(Array.from({ length: 40 * 16 }, (_, i) => i), 16, chainRoot({ hashSeed, model: "m" })));
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (const window of [1, 2, 3, 5]) {
      const pop = new KeyPopularity({ window, maxDepth: 32 });
      const ring: string[][] = [];
      const seen = new Set<string>();
      for (let r = 0; r < 300; r++) {
        // Prefixes of three chains: each request shares a head with some recent ones, or none.
        const chain = keyChain(roots[rand(3)].subarray(0, KEY_BYTES * (1 + rand(40))));
        pop.observe(chain);
        ring.push(chain.slice(0, 32));
        if (ring.length > window) ring.shift();
        chain.forEach((k) => seen.add(k));
        const expected = new Map<string, number>();
        for (const k of ring.flat()) expected.set(k, (expected.get(k) ?? 0) + 1);
        for (const k of seen) expect(pop.requestsWith([k], 0)).toBe(expected.get(k) ?? 0);
      }
    }
  });

  it("counts only the first maxDepth keys", () => {
    const pop = new KeyPopularity({ maxDepth: 1 });
    pop.observe(chain(1, 2));
    expect([pop.requestsWith([key(1)], 0), pop.requestsWith([key(2)], 0)]).toEqual([1, 0]);
  });
});
