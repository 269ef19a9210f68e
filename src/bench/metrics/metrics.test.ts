import { describe, expect, it } from "vitest";
import type { RunResult, RequestRecord } from "../des/simulate";
import { singleLruBound, workingSet, type KeyedArrival } from "./cache-bound";
import { summarizeRun } from "./run-summary";
import { cdfPoints, imbalance, percentile, summarize } from "./stats";

describe("stats", () => {
  it.each([
    { values: [1, 2, 3, 4], p: 50, expected: 2 },
    { values: [1, 2, 3, 4], p: 75, expected: 3 },
    { values: [1, 2, 3, 4], p: 99, expected: 4 },
    { values: [7], p: 1, expected: 7 },
    { values: [], p: 50, expected: NaN },
  ])("nearest-rank p$p of $values → $expected", ({ values, p, expected }) => {
    expect(percentile(values, p)).toBe(expected);
  });

  it("summarize sorts numerically and averages", () => {
    expect(summarize([10, 9, 100, 1])).toEqual({ n: 4, mean: 30, p50: 9, p90: 100, p99: 100, max: 100 });
  });

  it.each([
    { loads: [1, 1, 1, 1], expected: 1 },
    { loads: [2, 1, 1, 0], expected: 2 },
    { loads: [0, 0], expected: NaN },
  ])("imbalance of $loads → $expected", ({ loads, expected }) => {
    expect(imbalance(loads)).toBe(expected);
  });

  it("cdf points end at 1 and are thinned", () => {
    const pts = cdfPoints(Array.from({ length: 1000 }, (_, i) => 1000 - i), 10);
    expect(pts.length).toBeLessThanOrEqual(11);
    expect(pts[pts.length - 1]).toEqual([1000, 1]);
    expect(pts[0][1]).toBeCloseTo(0.1);
  });
});

const arrival = (at: number, prompt: string[], kv: string[] = prompt, tokens = prompt.length * 16 + 1): KeyedArrival => ({ arrivalMs: at, promptTokens: tokens, promptKeys: prompt, kvKeys: kv });

describe("singleLruBound", () => {
  it.each([
    {
      name: "a repeated prompt hits everything but the recomputed last token's block",
      stream: [arrival(0, ["a", "b"]), arrival(1, ["a", "b"], ["a", "b"], 32)],
      capacity: 10,
      tokenHit: 16 / (33 + 32),
    },
    {
      name: "a follow-up hits the previous turn's prompt and reply",
      stream: [arrival(0, ["a"], ["a", "r"]), arrival(1, ["a", "r", "c"])],
      capacity: 10,
      tokenHit: 32 / (17 + 49),
    },
    {
      name: "a cache too small to keep the chain between uses hits nothing",
      stream: [arrival(0, ["a", "b"]), arrival(1, ["x", "y"]), arrival(2, ["a", "b"])],
      capacity: 2,
      tokenHit: 0,
    },
  ])("$name", ({ stream, capacity, tokenHit }) => {
    expect(singleLruBound(stream, capacity, 16).tokenHitRate).toBeCloseTo(tokenHit, 10);
  });
});

describe("workingSet", () => {
  it("counts distinct blocks used in the trailing window, over the measured arrivals", () => {
    const stream = [arrival(0, ["a", "b"]), arrival(500, ["a", "c"]), arrival(2000, ["d"]), arrival(2100, ["d"])];
    const ws = workingSet(stream, 1000);
    // sizes after each arrival: {a,b}=2, {a,b,c}=3, {d}=1 (a,b,c expired), {d}=1
    expect(ws.meanBlocks).toBeCloseTo((2 + 3 + 1 + 1) / 4);
    expect([ws.peakBlocks, ws.totalBlocks]).toEqual([3, 4]);
    expect(workingSet(stream, 1000, 1000, 3000).meanBlocks).toBe(1);
  });
});

describe("summarizeRun", () => {
  const rec = (over: Partial<RequestRecord>): RequestRecord => ({
    id: "x", measured: true, session: "s", worker: "r0", arrivalMs: 0, firstTokenMs: 10, finishMs: 100, promptTokens: 100, cachedTokens: 0,
    outputTokens: 10, claimedBlocks: 0, stale: false, staleInFlight: false, guardTripped: false, decisionUs: 5, ...over,
  });
  const run: RunResult = {
    contender: "prefix-router",
    records: [
      rec({ id: "a", cachedTokens: 64, claimedBlocks: 4, worker: "r0" }),
      rec({ id: "b", claimedBlocks: 2, stale: true, worker: "r1", firstTokenMs: 30 }),
      rec({ id: "c", measured: false, cachedTokens: 100 }),
    ],
    skipped: 0,
    busyMs: [600, 300],
    windowBusyMs: [400, 200],
    window: { fromMs: 0, untilMs: 1000 },
    makespanMs: 100,
    wallMs: 1,
  };

  it("reduces the measured requests only", () => {
    const s = summarizeRun(run);
    expect(s.requests).toBe(2);
    expect(s.tokenHitRate).toBeCloseTo(64 / 200);
    expect(s.requestHitRate).toBe(0.5);
    expect([s.hitRoutes, s.staleRoutes, s.staleRate]).toEqual([2, 1, 0.5]);
    expect(s.ttftMs.mean).toBe(20);
    expect(s.throughputRps).toBe(2);
    expect(s.loadImbalance).toBeCloseTo(400 / 300);
    expect(s.utilisation).toBeCloseTo(0.3);
    // r0 holds a and c for 100 ms each, r1 holds b: in flight 0.2 vs 0.1 over the 1 s window
    expect(s.meanInFlight).toEqual([0.2, 0.1]);
    expect(s.inFlightImbalance).toBeCloseTo(0.2 / 0.15);
  });
});
