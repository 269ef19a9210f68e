import { describe, expect, it } from "vitest";
import { InFlightTracker } from "./in-flight-tracker";
import type { StickyParams } from "./policy";
import { isOverloaded, stickyLeastLoaded } from "./sticky-least-loaded";
import { leastLoaded, type WorkerView } from "./worker-view";

const guard: StickyParams = { absolute: 4, relative: 1.5, minGainBlocks: 0 };
const view = (id: string, inFlight: number): WorkerView => ({ id, address: `10.0.0.${id.slice(1)}:8000`, inFlight });
const match = (runs: Record<string, number | undefined>, totalBlocks = 10, seed = 7) => ({
  totalBlocks,
  runs: new Map(Object.entries(runs).filter((e): e is [string, number] => e[1] !== undefined)),
  seed,
});

describe("isOverloaded", () => {
  it.each([
    { inFlight: 0, min: 0, expected: false },
    { inFlight: 4, min: 0, expected: false }, // within absolute slack
    { inFlight: 5, min: 0, expected: true },
    { inFlight: 14, min: 10, expected: false }, // 4 over: within absolute
    { inFlight: 15, min: 10, expected: false }, // 5 over but not > 1.5 × 10
    { inFlight: 16, min: 10, expected: true },
  ])("inFlight $inFlight vs min $min → $expected", ({ inFlight, min, expected }) => {
    expect(isOverloaded(inFlight, min, guard)).toBe(expected);
  });
});

describe("stickyLeastLoaded", () => {
  it.each([
    {
      name: "hit goes to the longest match",
      workers: [view("w1", 0), view("w2", 0), view("w3", 0)],
      runs: { w2: 6, w3: 2 },
      expected: { worker: "w2", outcome: "hit", matchedBlocks: 6, guardTripped: false },
    },
    {
      name: "equal matches go to the least loaded",
      workers: [view("w1", 3), view("w2", 1), view("w3", 0)],
      runs: { w1: 6, w2: 6 },
      expected: { worker: "w2", outcome: "hit", matchedBlocks: 6, guardTripped: false },
    },
    {
      name: "longer match beats lower load within the guard",
      workers: [view("w1", 4), view("w2", 0)],
      runs: { w1: 6, w2: 1 },
      expected: { worker: "w1", outcome: "hit", matchedBlocks: 6, guardTripped: false },
    },
    {
      name: "overloaded holder loses affinity to the next best match",
      workers: [view("w1", 9), view("w2", 0), view("w3", 1)],
      runs: { w1: 6, w3: 3 },
      expected: { worker: "w3", outcome: "hit", matchedBlocks: 3, guardTripped: true },
    },
    {
      name: "overloaded sole holder: miss to the least loaded",
      workers: [view("w1", 9), view("w2", 2), view("w3", 0)],
      runs: { w1: 6 },
      expected: { worker: "w3", outcome: "miss", matchedBlocks: 0, guardTripped: true },
    },
    {
      name: "miss goes to the least loaded",
      workers: [view("w1", 2), view("w2", 1), view("w3", 3)],
      runs: {},
      expected: { worker: "w2", outcome: "miss", matchedBlocks: 0, guardTripped: false },
    },
  ])("$name", ({ workers, runs, expected }) => {
    const d = stickyLeastLoaded(workers, match(runs), guard);
    expect(d.kind).toBe("route");
    if (d.kind !== "route") return;
    expect({ worker: d.worker.id, outcome: d.outcome, matchedBlocks: d.matchedBlocks, guardTripped: d.guardTripped }).toEqual(expected);
    expect(d.candidates).toBe(workers.length);
    expect(d.totalBlocks).toBe(10);
  });

  it.each([
    {
      name: "a short shared head does not outweigh load: the least-loaded worker takes it",
      workers: [view("w1", 3), view("w2", 0)],
      runs: { w1: 4 },
      expected: { worker: "w2", outcome: "miss", matchedBlocks: 0, gainDeclined: true },
    },
    {
      name: "a lead of at least minGainBlocks keeps affinity",
      workers: [view("w1", 3), view("w2", 0)],
      runs: { w1: 20, w2: 4 },
      expected: { worker: "w1", outcome: "hit", matchedBlocks: 20, gainDeclined: undefined },
    },
    {
      name: "the gain is measured against the least-loaded worker's own match",
      workers: [view("w1", 3), view("w2", 0)],
      runs: { w1: 20, w2: 10 },
      expected: { worker: "w2", outcome: "hit", matchedBlocks: 10, gainDeclined: true },
    },
    {
      name: "when the pick is the least-loaded worker nothing changes",
      workers: [view("w1", 0), view("w2", 1)],
      runs: { w1: 3 },
      expected: { worker: "w1", outcome: "hit", matchedBlocks: 3, gainDeclined: undefined },
    },
  ])("minimum gain (16 blocks): $name", ({ workers, runs, expected }) => {
    const d = stickyLeastLoaded(workers, match(runs), { ...guard, minGainBlocks: 16 });
    if (d.kind !== "route") throw new Error("expected a route");
    expect({ worker: d.worker.id, outcome: d.outcome, matchedBlocks: d.matchedBlocks, gainDeclined: d.gainDeclined }).toEqual(expected);
    expect(d.guardTripped).toBe(false);
  });

  it("minimum gain: the lead is weighed by the shared-prefix charge — a head every worker caches anyway is no gain, however long", () => {
    const workers = [view("w1", 3), view("w2", 0)];
    const decide = (w1Run: number, charges: number[]) => {
      const d = stickyLeastLoaded(workers, match({ w1: w1Run }), { ...guard, minGainBlocks: 16 }, charges);
      if (d.kind !== "route") throw new Error("expected a route");
      return d;
    };
    const systemPrompt = new Array<number>(64).fill(0.01); // 64 blocks most requests carry: charge N/reuses ≈ 0.01
    const declined = decide(66, systemPrompt);
    // The idle worker takes it, and the decision claims only what that worker holds (nothing here).
    expect([declined.worker.id, declined.gainDeclined, declined.outcome, declined.matchedBlocks]).toEqual(["w2", true, "miss", 0]);
    // Without the charge the 66-block lead is "enough gain": the old rule that left replicas idle.
    expect(decide(66, []).worker.id).toBe("w1");
    // A conversation's own history past the shared head still counts in full.
    expect([decide(90, systemPrompt).worker.id, decide(90, systemPrompt).gainDeclined]).toEqual(["w1", undefined]);
    // A group prompt 16 requests share over 8 workers weighs ½: 128 blocks are a 64-block lead.
    expect(decide(128, new Array<number>(128).fill(0.5)).worker.id).toBe("w1");
  });

  it("load is the load view's outstanding sequences when there is one (it outlives a streaming response's headers)", () => {
    const busy = { ...view("w1", 0), load: { queuedTokens: 0, queuedMs: 0, running: 9, kvTokens: 0, sampleAgeMs: 0 } };
    const free = { ...view("w2", 5), load: { queuedTokens: 0, queuedMs: 0, running: 0, kvTokens: 0, sampleAgeMs: 0 } };
    const d = stickyLeastLoaded([busy, free], match({}), guard);
    if (d.kind !== "route") throw new Error("expected a route");
    expect(d.worker.id).toBe("w2");
  });

  it("rejects when there are no candidates", () => {
    expect(stickyLeastLoaded([], match({}), guard)).toEqual({ kind: "reject", reason: "no-candidates" });
  });

  it("breaks ties the same way for the same seed and spreads different seeds", () => {
    const workers = [view("w1", 0), view("w2", 0), view("w3", 0), view("w4", 0)];
    const pickFor = (seed: number) => {
      const d = stickyLeastLoaded(workers, match({}, 4, seed), guard);
      return d.kind === "route" ? d.worker.id : "none";
    };
    expect(pickFor(12345)).toBe(pickFor(12345));
    const counts = new Map<string, number>();
    for (let seed = 0; seed < 4000; seed++) counts.set(pickFor(seed * 2654435761), (counts.get(pickFor(seed * 2654435761)) ?? 0) + 1);
    expect(counts.size).toBe(4);
    for (const n of counts.values()) expect(n).toBeGreaterThan(800); // each near 1000
  });

  it("is pure: same input, same output, input untouched", () => {
    const workers = Object.freeze([view("w1", 1), view("w2", 0)]);
    const m = match({ w1: 3 });
    expect(stickyLeastLoaded(workers, m, guard)).toEqual(stickyLeastLoaded(workers, m, guard));
    expect(workers.map((w) => w.inFlight)).toEqual([1, 0]);
  });
});

describe("leastLoaded", () => {
  it("picks the minimum in-flight and undefined for no workers", () => {
    expect(leastLoaded([view("w1", 3), view("w2", 1), view("w3", 2)], 1)?.id).toBe("w2");
    expect(leastLoaded([], 1)).toBeUndefined();
  });
});

describe("InFlightTracker", () => {
  it("counts acquisitions and releases each once", () => {
    const t = new InFlightTracker();
    const r1 = t.acquire("w1");
    const r2 = t.acquire("w1");
    t.acquire("w2");
    expect(t.snapshot([{ id: "w1", address: "a:1" }, { id: "w2", address: "b:1" }, { id: "w3", address: "c:1" }]).map((w) => w.inFlight)).toEqual([2, 1, 0]);
    r1();
    r1();
    expect(t.inFlight("w1")).toBe(1);
    r2();
    expect(t.inFlight("w1")).toBe(0);
  });

  it("snapshots are frozen", () => {
    const snap = new InFlightTracker().snapshot([{ id: "w1", address: "a:1" }]);
    expect(Object.isFrozen(snap)).toBe(true);
    expect(Object.isFrozen(snap[0])).toBe(true);
  });
});
