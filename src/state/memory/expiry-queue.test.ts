import { describe, expect, it } from "vitest";
import { seededRandom } from "../../common/seeded-random";
import { ExpiryQueue } from "./expiry-queue";

describe("ExpiryQueue", () => {
  it("agrees with a plain map under random sets, extensions, deletes and sweeps in small steps (codes above 2^31)", () => {
    const queue = new ExpiryQueue();
    const model = new Map<number, number>();
    const next = seededRandom(42);
    let now = 1_700_000_000_000;
    // Few distinct ids so codes collide in probe runs, grow the table and get deleted often.
    const code = () => Math.floor(next() * 3000) * 65_536 + Math.floor(next() * 4);
    for (let step = 0; step < 40_000; step++) {
      const r = next();
      const c = code();
      if (r < 0.55) {
        const at = now + Math.floor(next() * 5000);
        queue.set(c, at);
        model.set(c, at);
      } else if (r < 0.8) {
        queue.delete(c);
        model.delete(c);
      } else if (r < 0.98) {
        expect(queue.get(c)).toBe(model.get(c));
      } else {
        now += Math.floor(next() * 1500);
        const dropped: number[] = [];
        // In steps of a few codes each: a bucket read in several steps, kept codes not read twice.
        const step = queue.sweep(now, (d) => {
          dropped.push(d);
          queue.delete(d);
        });
        let steps = 0;
        while (!step(1 + Math.floor(next() * 40))) expect(++steps).toBeLessThan(10_000);
        const due = [...model].filter(([, at]) => at <= now).map(([c]) => c);
        expect(dropped.sort((a, b) => a - b)).toEqual(due.sort((a, b) => a - b));
        for (const d of due) model.delete(d);
      }
      expect(queue.size).toBe(model.size);
    }
    for (const [c, at] of model) expect(queue.get(c)).toBe(at);
  });

  it("drops an extended entry only at its new expiry, in a later bucket", () => {
    const queue = new ExpiryQueue();
    const c = 70_000 * 65_536 + 1;
    queue.set(c, 1_000);
    queue.set(c, 1_500); // same bucket: not queued twice
    queue.set(c, 3_200); // a later bucket
    const dropped: number[] = [];
    expect(queue.sweep(2_000, (d) => dropped.push(d))(Infinity)).toBe(true);
    expect(dropped).toEqual([]);
    queue.sweep(3_200, (d) => dropped.push(d))(Infinity);
    expect(dropped).toEqual([c]);
  });
});
