/** BlockTable: key → stable id, over typed arrays; it grows by moving its index a few slots per call. */
import { describe, expect, it } from "vitest";
import { seededRandom } from "../../common/seeded-random";
import { BlockTable } from "./block-table";

const hex = (n: number) => n.toString(16).padStart(16, "0");

describe("BlockTable", () => {
  it("agrees with a plain map under random inserts, finds and deletes through many growths (ids stable, reused once freed)", () => {
    for (let seed = 1; seed <= 8; seed++) {
      const next = seededRandom(seed);
      let grows = 0;
      const table = new BlockTable(16, () => grows++);
      const model = new Map<string, number>();
      const liveIds = new Set<number>();
      let growingSteps = 0;
      // Keys from a pool: repeats, deletes of live keys and of keys moved or not yet moved by a growth.
      const key = () => hex(Math.floor(next() * 6000) * 0x9e3779b1 + 7);
      for (let step = 0; step < 30_000; step++) {
        if (table.growing) growingSteps++;
        const k = key();
        const r = next();
        if (r < 0.6) {
          const id = table.findOrInsert(k);
          expect(table.inserted).toBe(!model.has(k));
          if (model.has(k)) expect(id).toBe(model.get(k));
          else {
            expect(liveIds.has(id)).toBe(false);
            expect(id).toBeLessThan(table.capacity);
            model.set(k, id);
            liveIds.add(id);
          }
        } else if (r < 0.8) {
          if (model.has(k)) {
            table.delete(model.get(k)!);
            liveIds.delete(model.get(k)!);
            model.delete(k);
          }
        } else expect(table.find(k)).toBe(model.get(k) ?? -1);
        expect(table.size).toBe(model.size);
      }
      for (const [k, id] of model) expect(table.find(k)).toBe(id);
      expect(grows).toBeGreaterThan(5);
      expect(growingSteps).toBeGreaterThan(500);
    }
  });

  it("finds every key, moved or not, while a growth is half done, and a deleted one in neither index", () => {
    const table = new BlockTable(1024, () => undefined);
    const ids = new Map<string, number>();
    let n = 0;
    while (!table.growing) {
      const k = hex(++n * 7919);
      ids.set(k, table.findOrInsert(k));
    }
    // The growth moves a few slots per call: after these calls, part of the old index is moved.
    const deleted: string[] = [];
    for (let i = 0; i < 40 && table.growing; i++) {
      const [k, id] = [...ids][i * 7];
      table.delete(id);
      ids.delete(k);
      deleted.push(k);
      for (const [key, want] of ids) expect(table.find(key)).toBe(want);
      for (const gone of deleted) expect(table.find(gone)).toBe(-1);
    }
    expect(table.growing).toBe(true);
  });
});
