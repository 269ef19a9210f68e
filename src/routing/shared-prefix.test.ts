import { describe, expect, it } from "vitest";
import { seededRandom } from "../common/seeded-random";
import { DEFAULT_COST_MODEL, prefillComputeMs } from "./cost-model";
import { KeyPopularity } from "./policies/key-popularity";
import { sharedHeadCharges, sharedPrefix } from "./shared-prefix";

const keys = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}${i}`);

function popularity(groups: { head: string[]; requests: number }[]): KeyPopularity {
  const p = new KeyPopularity();
  let n = 0;
  for (const g of groups) for (let i = 0; i < g.requests; i++) p.observe([...g.head, `own${n++}`]);
  return p;
}

/** Request counts along a chain: from `first`, each block falls to a random fraction with probability `drop` (never rises). */
function monotoneCounts(random: () => number, length: number, first: number, drop: number): number[] {
  const counts: number[] = [];
  let c = first;
  for (let i = 0; i < length; i++) {
    if (random() < drop) c = Math.floor(c * random());
    counts.push(c);
  }
  return counts;
}

describe("shared-prefix charge", () => {
  it.each([
    { name: "a prompt every request carries is charged N/reuses", requests: 100, workers: 4, want: [0.04, 0.04] },
    { name: "a head that recurs once per worker or less keeps its full charge", requests: 4, workers: 4, want: [] },
    { name: "16 requests of one group over 8 workers weigh half", requests: 16, workers: 8, want: [0.5, 0.5] },
  ])("$name", ({ requests, workers, want }) => {
    const head = keys(2, "h");
    expect(sharedHeadCharges([...head, "x"], popularity([{ head, requests }]), workers, 1)).toEqual(want);
  });

  it("the head ends where popularity drops; a shorter cache lifetime than the window scales reuses down", () => {
    const p = popularity([{ head: keys(3, "h"), requests: 60 }, { head: [...keys(3, "h"), ...keys(2, "g")], requests: 20 }]);
    const request = [...keys(3, "h"), ...keys(2, "g"), "mine"];
    expect(sharedHeadCharges(request, p, 4, 1)).toEqual([4 / 80, 4 / 80, 4 / 80, 4 / 20, 4 / 20]);
    expect(sharedHeadCharges(request, p, 4, 0.1)).toEqual([4 / 8, 4 / 8, 4 / 8]); // 80 × 0.1 = 8 reuses; 20 × 0.1 = 2 ≤ 4
  });

  it("discounts exactly the shared blocks a worker lacks", () => {
    const head = keys(4, "h");
    const s = sharedPrefix({ keys: [...head, "x"], popularity: popularity([{ head, requests: 40 }]), workers: 4, reuseScale: 1, blockSize: 16, cost: DEFAULT_COST_MODEL });
    const block = (j: number) => (1 - 4 / 40) * prefillComputeMs(DEFAULT_COST_MODEL, 16, 16 * j);
    expect(s.blocks).toBe(4);
    expect(s.discountMs(0)).toBeCloseTo(block(0) + block(1) + block(2) + block(3));
    expect(s.discountMs(2)).toBeCloseTo(block(2) + block(3));
    expect(s.discountMs(4)).toBe(0);
    expect(s.discountMs(9)).toBe(0);
  });

  it("discounts in closed form what a block-by-block sum over several runs does", () => {
    const random = seededRandom(11);
    for (let trial = 0; trial < 20; trial++) {
      const counts = monotoneCounts(random, 600, 40 + Math.floor(random() * 400), 0.01);
      const view = { requests: 1000, requestsWith: (_: readonly string[], at: number) => counts[at] };
      const chain = keys(600, "k");
      const blockSize = 16;
      const charges = sharedHeadCharges(chain, view, 4, 1);
      const s = sharedPrefix({ keys: chain, popularity: view, workers: 4, reuseScale: 1, blockSize, cost: DEFAULT_COST_MODEL });
      expect(s.blocks).toBe(charges.length);
      for (const cached of [-1, 0, 1, Math.floor(charges.length / 3), charges.length - 1, charges.length, 700]) {
        let want = 0;
        for (let j = Math.max(0, cached); j < charges.length; j++) want += (1 - charges[j]) * prefillComputeMs(DEFAULT_COST_MODEL, blockSize, blockSize * j);
        expect(s.discountMs(cached)).toBeCloseTo(want, 9);
      }
    }
  });

  it("reads popularity O(runs · log blocks) times and charges exactly what a block-by-block walk does", () => {
    // Random monotone counts along a 2,048-block chain: a few runs, as shared prompts make them.
    const random = seededRandom(7);
    for (let trial = 0; trial < 20; trial++) {
      const counts = monotoneCounts(random, 2048, 50 + Math.floor(random() * 200), 0.004);
      let reads = 0;
      const view = { requests: 1000, requestsWith: (_: readonly string[], at: number) => (reads++, counts[at]) };
      const chain = keys(2048, "k");
      const got = sharedHeadCharges(chain, view, 8, 1);
      const want: number[] = [];
      for (const count of counts) {
        if (count <= 8) break;
        want.push(8 / count);
      }
      expect(got).toEqual(want);
      const runs = new Set(counts.slice(0, want.length + 1)).size;
      expect(reads).toBeLessThanOrEqual(runs * 13);
    }
  });
});
