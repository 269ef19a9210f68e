import { describe, expect, it } from "vitest";
import { runReaching } from "./zmq-kv-subscriber";
import { SequenceTracker, type LiveVerdict } from "./zmq-sequence";

/** Feeds live seqs, marking each applied unless it is a duplicate; returns the verdict kinds. */
function feed(seqs: number[], tracker = new SequenceTracker()): string[] {
  return seqs.map((s) => {
    const v: LiveVerdict = tracker.observeLive(s);
    if (v.kind !== "duplicate") tracker.markApplied(s);
    return v.kind === "gap" ? `gap ${v.from}-${v.to}` : v.kind;
  });
}

describe("SequenceTracker", () => {
  const cases: { name: string; seqs: number[]; expected: string[] }[] = [
    { name: "in order from 0", seqs: [0, 1, 2], expected: ["first", "next", "next"] },
    { name: "joined mid-stream", seqs: [41, 42], expected: ["first", "next"] },
    { name: "repeated seq", seqs: [0, 1, 1, 2], expected: ["first", "next", "duplicate", "next"] },
    { name: "gap", seqs: [0, 1, 4, 5], expected: ["first", "next", "gap 2-3", "next"] },
    { name: "engine restart (back to 0)", seqs: [5, 6, 0, 1], expected: ["first", "next", "restart", "next"] },
    { name: "engine restart seen mid-way (below last)", seqs: [50, 51, 7], expected: ["first", "next", "restart"] },
  ];
  it.each(cases)("$name", ({ seqs, expected }) => {
    expect(feed(seqs)).toEqual(expected);
  });

  it("live seqs already applied through replay are duplicates, not restarts", () => {
    const t = new SequenceTracker();
    feed([0, 1], t);
    expect(t.observeLive(5)).toEqual({ kind: "gap", from: 2, to: 4 });
    for (const s of [2, 3, 4, 5, 6, 7]) t.markApplied(s); // the replay ran ahead of the live stream
    expect(feed([6, 7, 8], t)).toEqual(["duplicate", "duplicate", "next"]);
  });

  it("resetApplied() restarts the applied watermark only", () => {
    const t = new SequenceTracker();
    feed([3, 4], t);
    t.resetApplied();
    expect(t.applied()).toBeNull();
    expect(t.observeLive(0)).toEqual({ kind: "restart", previous: 4 });
  });

  it("reset() forgets both watermarks: the next seq starts a new stream", () => {
    const t = new SequenceTracker();
    feed([3, 4], t);
    t.reset();
    expect(t.applied()).toBeNull();
    expect(feed([5, 6], t)).toEqual(["first", "next"]);
  });
});

describe("runReaching (which replayed batches to apply)", () => {
  const b = (...seqs: number[]) => seqs.map((seq) => ({ seq, payload: Buffer.alloc(0) }));
  const cases: { name: string; batches: number[]; from: number; live: number; expected: number[] }[] = [
    { name: "covers the gap and beyond", batches: [2, 3, 4, 5, 6], from: 2, live: 5, expected: [2, 3, 4, 5, 6] },
    { name: "older batches before `from` are dropped", batches: [0, 1, 2, 3], from: 2, live: 3, expected: [2, 3] },
    { name: "buffer too short: the tail that reaches live", batches: [4, 5, 6], from: 2, live: 5, expected: [4, 5, 6] },
    { name: "a hole inside: only the tail after it", batches: [2, 3, 5, 6], from: 2, live: 6, expected: [5, 6] },
    { name: "does not reach live", batches: [2, 3], from: 2, live: 6, expected: [] },
    { name: "empty reply", batches: [], from: 2, live: 6, expected: [] },
  ];
  it.each(cases)("$name", ({ batches, from, live, expected }) => {
    expect(runReaching(b(...batches), from, live).map((x) => x.seq)).toEqual(expected);
  });
});
