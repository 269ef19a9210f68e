/**
 * The short leak run (e2e/robust/soak-run.ts): distinct chat conversations through a router
 * process; its heap after GC (main and tokenizer threads) and RSS stay flat over the last half.
 * The tokenizer caches get a small budget so they are full long before the half, and speculative
 * entries a 1 s lifetime so the map's live set does not follow the request rate.
 */
import { expect, it } from "vitest";
import { describeSoak, runSoak } from "./soak-run";

it("the router's heap after GC and RSS stay flat over distinct conversations", { timeout: 150_000 }, async () => {
  const r = await runSoak({ requests: 5_000, samples: 10, concurrency: 16, seed: 3, cacheBytes: 4 << 20, speculativeTtlMs: 1_000, maxGrowth: 0.1, log: () => undefined }, "vitest e2e/robust/soak.test.ts");
  console.log(describeSoak(r));
  expect(r.failed).toBe(0);
  expect(r.samples.length).toBeGreaterThanOrEqual(10);
  expect(Math.abs(r.heapLastHalf.growth)).toBeLessThanOrEqual(0.1);
  expect(Math.abs(r.rssLastHalf.growth)).toBeLessThanOrEqual(0.1);
  expect(Math.abs(r.outsideCachesLastHalf.growth)).toBeLessThanOrEqual(0.1);
});
