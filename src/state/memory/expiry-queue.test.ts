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
    let growingSteps = 0;
    for (let step = 0; step < 40_000; step++) {
      if (queue.growing) growingSteps++;
      const r = next();
      const c = code();
      if (r < 0.55) {
        // Up to a minute ahead: entries pile up into the thousands, so the table grows (and moves).
        const at = now + Math.floor(next() * 60_000);
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
    // The table grew several times, each growth moving its entries over many of these steps.
    expect(growingSteps).toBeGreaterThan(100);
  });

  it("grows without moving every entry at once: a set that starts a growth moves none, later calls a few each", () => {
    const queue = new ExpiryQueue();
    let c = 0;
    while (!queue.growing) queue.set(++c * 65_536, 10_000);
    const atGrowth = c;
    // Every entry is still found, wherever it lives now.
    for (let k = 1; k <= atGrowth; k++) expect(queue.get(k * 65_536)).toBe(10_000);
    let calls = 0;
    while (queue.growing) (queue.set(++c * 65_536, 20_000), calls++);
    expect(calls).toBeGreaterThan(16);
    for (let k = 1; k <= c; k++) expect(queue.get(k * 65_536)).toBe(k <= atGrowth ? 10_000 : 20_000);
    expect(queue.size).toBe(c);
  });

  it("agrees with a plain map while a growth is half done: entries moved and not yet moved are updated, deleted and found", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const next = seededRandom(seed);
      const queue = new ExpiryQueue();
      const model = new Map<number, number>();
      // Codes of few ids, in long probe runs.
      const code = () => Math.floor(next() * 700) * 65_536 + Math.floor(next() * 2);
      while (!queue.growing) {
        const c = code();
        queue.set(c, 5_000);
        model.set(c, 5_000);
      }
      const codes = () => [...model.keys()];
      for (let step = 0; step < 40 && queue.growing; step++) {
        const r = next();
        const known = codes();
        const c = r < 0.6 && known.length > 0 ? known[Math.floor(next() * known.length)] : code();
        if (r < 0.3) (queue.delete(c), model.delete(c));
        else {
          const at = 1_000 * Math.floor(next() * 20);
          queue.set(c, at);
          model.set(c, at);
        }
        for (const k of known) expect(queue.get(k)).toBe(model.get(k));
        expect(queue.get(c)).toBe(model.get(c));
        expect(queue.size).toBe(model.size);
      }
    }
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
