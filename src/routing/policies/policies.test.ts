import { describe, expect, it } from "vitest";
import type { PolicyDecision } from "../policy";
import type { WorkerView } from "../worker-view";
import { createPolicy, type PolicySpec } from "./create-policy";
import { KeyPopularity } from "./key-popularity";
import { POLICY_KINDS, prefixMatch, type RoutingInput } from "./routing-policy";

const view = (id: string, inFlight = 0): WorkerView => Object.freeze({ id, address: `10.0.0.${id.slice(1)}:8000`, inFlight });
const workers = (...loads: number[]) => Object.freeze(loads.map((l, i) => view(`w${i + 1}`, l)));
const KEYS = ["00000000000000aa", "00000000000000bb", "00000000000000cc"];
const input = (ws: readonly WorkerView[], sequence = 0, runs?: Record<string, number | undefined>): RoutingInput => ({
  workers: ws,
  keys: KEYS,
  match: runs ? prefixMatch(KEYS, new Map(Object.entries(runs).filter((e): e is [string, number] => e[1] !== undefined))) : null,
  sequence,
});
const picked = (d: PolicyDecision) => (d.kind === "route" ? d.worker.id : d.reason);

function sequence(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

const specs: Record<(typeof POLICY_KINDS)[number], () => PolicySpec> = {
  "round-robin": () => ({ kind: "round-robin" }),
  random: () => ({ kind: "random", random: sequence([0.1, 0.9]) }),
  "least-loaded": () => ({ kind: "least-loaded" }),
  "consistent-hash": () => ({ kind: "consistent-hash", popularity: new KeyPopularity() }),
  "sticky-least-loaded": () => ({ kind: "sticky-least-loaded" }),
  "min-ttft": () => ({ kind: "min-ttft", blockSize: 16, popularity: new KeyPopularity() }),
};

describe("createPolicy", () => {
  it.each(POLICY_KINDS.map((kind) => ({ kind })))("$kind: builds, rejects an empty worker list, routes otherwise", ({ kind }) => {
    const policy = createPolicy(specs[kind]());
    expect(policy.kind).toBe(kind);
    expect(createPolicy(specs[kind]()).decide(input([]))).toEqual({ kind: "reject", reason: "no-candidates" });
    const d = policy.decide(input(workers(0, 0, 0), 0, {}));
    expect(d.kind).toBe("route");
    if (d.kind === "route") expect(d.totalBlocks).toBe(KEYS.length);
  });

  it("throws on an unknown kind", () => {
    expect(() => createPolicy({ kind: "nope" } as unknown as PolicySpec)).toThrow(/unknown policy "nope"/);
  });

  it.each(POLICY_KINDS.map((kind) => ({ kind })))("$kind: same inputs, same decision (deterministic)", ({ kind }) => {
    const run = () => {
      const p = createPolicy(specs[kind]());
      return [0, 1, 2, 3, 4, 5].map((s) => picked(p.decide(input(workers(s % 3, 1, 2), s, { w2: 1 }))));
    };
    expect(run()).toEqual(run());
  });
});

describe("cache-blind policies", () => {
  it.each([
    { name: "round-robin cycles in snapshot order", spec: specs["round-robin"](), loads: [5, 0, 0], seqs: [0, 1, 2, 3], expected: ["w1", "w2", "w3", "w1"] },
    { name: "random maps [0,1) onto the list", spec: { kind: "random", random: sequence([0, 0.34, 0.67, 0.999]) } as PolicySpec, loads: [0, 0, 0], seqs: [0, 1, 2, 3], expected: ["w1", "w2", "w3", "w3"] },
    { name: "least-loaded picks the fewest in flight", spec: specs["least-loaded"](), loads: [3, 1, 2], seqs: [0, 1, 2], expected: ["w2", "w2", "w2"] },
  ])("$name", ({ spec, loads, seqs, expected }) => {
    const p = createPolicy(spec);
    const got = seqs.map((s) => p.decide(input(workers(...loads), s)));
    expect(got.map(picked)).toEqual(expected);
    for (const d of got) if (d.kind === "route") expect([d.outcome, d.matchedBlocks]).toEqual(["miss", 0]);
  });

  it("least-loaded spreads ties over every worker", () => {
    const p = createPolicy(specs["least-loaded"]());
    const seen = new Set(Array.from({ length: 64 }, (_, s) => picked(p.decide(input(workers(0, 0, 0, 0), s)))));
    expect(seen.size).toBe(4);
  });
});

describe("sticky-least-loaded policy (the production decision)", () => {
  it.each([
    { name: "longest match wins", loads: [0, 0, 0], runs: { w2: 3, w3: 1 }, expected: { worker: "w2", outcome: "hit", matchedBlocks: 3 } },
    { name: "no match: least loaded", loads: [2, 1, 0], runs: {}, expected: { worker: "w3", outcome: "miss", matchedBlocks: 0 } },
    { name: "guard drops an overloaded holder", loads: [20, 0, 0], runs: { w1: 3 }, expected: { worker: "w2|w3", outcome: "miss", matchedBlocks: 0 } },
  ])("$name", ({ loads, runs, expected }) => {
    const d = createPolicy({ kind: "sticky-least-loaded" }).decide(input(workers(...loads), 0, runs));
    if (d.kind !== "route") throw new Error("expected a route");
    expect(expected.worker.split("|")).toContain(d.worker.id);
    expect([d.outcome, d.matchedBlocks]).toEqual([expected.outcome, expected.matchedBlocks]);
  });

  it("uses a custom load guard", () => {
    const d = createPolicy({ kind: "sticky-least-loaded", loadGuard: { absolute: 100, relative: 100 }, minGainBlocks: 0 }).decide(input(workers(20, 0), 0, { w1: 3 }));
    expect(picked(d)).toBe("w1");
  });
});

describe("sticky-least-loaded minimum gain and tie seed (production: 16 blocks, last block)", () => {
  const keys = ["00000000000000aa", "00000000000000bb"];
  it.each([
    { name: "minGain 0 keeps production: short match wins", minGain: 0, loads: [3, 0], runs: { w1: 2 }, expected: "w1" },
    { name: "short match below minGain goes least-loaded", minGain: 16, loads: [3, 0], runs: { w1: 2 }, expected: "w2" },
    { name: "long match at or above minGain stays sticky", minGain: 2, loads: [3, 0], runs: { w1: 2 }, expected: "w1" },
    { name: "gain is measured against the least-loaded worker's own match", minGain: 16, loads: [3, 0], runs: { w1: 20, w2: 10 }, expected: "w2" },
  ])("$name", ({ minGain, loads, runs, expected }) => {
    const p = createPolicy({ kind: "sticky-least-loaded", minGainBlocks: minGain });
    const d = p.decide({ workers: workers(...loads), keys, match: prefixMatch(keys, new Map(Object.entries(runs))), sequence: 0 });
    expect(picked(d)).toBe(expected);
  });

  it("tie seed: last block by default (RequestRouter's rule), first block on request", () => {
    expect(prefixMatch(["0000000100000000", "0000000200000000"], new Map()).seed).toBe(2);
    expect(prefixMatch(["0000000100000000", "0000000200000000"], new Map(), "first").seed).toBe(1);
    expect(prefixMatch([], new Map(), "first").seed).toBe(0);
  });

  it("defaults to the production minimum gain of 16 blocks", () => {
    const d = createPolicy({ kind: "sticky-least-loaded" }).decide({ workers: workers(3, 0), keys, match: prefixMatch(keys, new Map([["w1", 15]])), sequence: 0 });
    expect(picked(d)).toBe("w2");
  });
});
