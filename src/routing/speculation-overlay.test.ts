import { describe, expect, it } from "vitest";
import { sharedRun, SpeculationOverlay } from "./speculation-overlay";

const chain = (prefix: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => (i < from ? `s${i}` : `${prefix}${i}`));

describe("sharedRun", () => {
  it.each([
    { a: chain("a", 10), b: chain("a", 10), want: 10 },
    { a: chain("a", 10), b: chain("a", 4), want: 4 },
    { a: chain("a", 10, 6), b: chain("b", 10, 6), want: 6 },
    { a: chain("a", 10), b: chain("b", 10), want: 0 },
    { a: [], b: chain("a", 3), want: 0 },
  ])("$want leading keys", ({ a, b, want }) => expect(sharedRun(a, b)).toBe(want));
});

describe("SpeculationOverlay", () => {
  it("raises a candidate's run to what a pending route of it covers, and leaves other workers alone", () => {
    const o = new SpeculationOverlay();
    o.add("w2", chain("x", 8, 5));
    const runs = new Map([["w1", 2], ["w2", 0], ["w3", 0]]);
    expect([...o.merge(chain("y", 10, 5), runs, 0, 0)]).toEqual([["w1", 2], ["w2", 5], ["w3", 0]]);
    expect([...o.merge(chain("x", 10, 5), runs, 0, 0)]).toEqual([["w1", 2], ["w2", 8], ["w3", 0]]);
    expect(o.merge(chain("z", 10), runs, 0, 0)).toBe(runs); // nothing shared: the lookup's own map
  });

  it("ignores workers the request may not use", () => {
    const o = new SpeculationOverlay();
    o.add("w9", chain("x", 8));
    expect([...o.merge(chain("x", 8), new Map([["w1", 0]]), 0, 0)]).toEqual([["w1", 0]]);
  });

  it("applies a route only to lookups that started before its index write landed, and forgets it after the lookup budget", () => {
    const o = new SpeculationOverlay();
    const p = o.add("w1", chain("x", 4));
    const runs = new Map([["w1", 0]]);
    expect(o.merge(chain("x", 4), runs, 1_000_000, 999_999).get("w1")).toBe(4); // write not done yet: kept however long
    o.settle(p, 100, 50);
    expect(o.merge(chain("x", 4), runs, 149, 99).get("w1")).toBe(4); // this lookup started before the write landed
    // A lookup that started after the write saw the index itself — which may since say the blocks were evicted.
    expect(o.merge(chain("x", 4), runs, 149, 100).get("w1")).toBe(0);
    expect(o.merge(chain("x", 4), runs, 150, 99).get("w1")).toBe(0);
    expect(o.size).toBe(0);
  });
});
