import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEFAULT_COST_MODEL, prefillComputeMs } from "../cost-model";
import type { PolicyDecision } from "../policy";
import type { WorkerLoad, WorkerView } from "../worker-view";
import { KeyPopularity } from "./key-popularity";
import { minTtft } from "./min-ttft";
import { prefixMatch } from "./routing-policy";

const BS = 16;
// Block keys are hex (SHA-256 prefixes): the tie-break seed reads their first 32 bits.
const keys = (n: number, tag = "k") => Array.from({ length: n }, (_, i) => createHash("sha256").update(`${tag}/${i}`).digest("hex").slice(0, 16));
const idle: WorkerLoad = { queuedTokens: 0, queuedMs: 0, running: 0, kvTokens: 0, sampleAgeMs: 0 };
const view = (id: string, load: Partial<WorkerLoad> = {}): WorkerView => ({ id, address: `${id}:8000`, inFlight: 0, load: { ...idle, ...load } });
const route = (d: PolicyDecision) => {
  if (d.kind !== "route") throw new Error("rejected");
  return d;
};

function decide(workers: WorkerView[], chain: string[], runs: Record<string, number>, extra: { arrivalsPerMs?: number; popularity?: KeyPopularity; promptTokens?: number } = {}) {
  const policy = minTtft({ blockSize: BS, popularity: extra.popularity });
  return route(policy.decide({ workers, keys: chain, match: prefixMatch(chain, new Map(Object.entries(runs))), sequence: 0, promptTokens: extra.promptTokens, arrivalsPerMs: extra.arrivalsPerMs }));
}

describe("min-ttft", () => {
  it("estimates TTFT as queue + step + prefill with the cost model, and picks the lowest charge", () => {
    const chain = keys(100); // 1,600 tokens
    const d = decide([view("a"), view("b")], chain, { a: 90, b: 0 });
    expect(d.worker.id).toBe("a");
    expect(d.outcome).toBe("hit");
    const [a, b] = d.estimates!;
    expect(a.prefillMs).toBeCloseTo(prefillComputeMs(DEFAULT_COST_MODEL, 160, 1440));
    expect(b.prefillMs).toBeCloseTo(prefillComputeMs(DEFAULT_COST_MODEL, 1600, 0));
    expect(a.ttftMs).toBeCloseTo(a.queueMs + a.stepMs + a.prefillMs);
    expect(a.stepMs).toBe(DEFAULT_COST_MODEL.prefillBaseMs);
    expect(d.decidedBy).toBe("cache");
  });

  it("follows a cached prefix exactly as long as it saves more than the queue in front of it costs", () => {
    const chain = keys(100);
    const saved = prefillComputeMs(DEFAULT_COST_MODEL, 1600, 0) - prefillComputeMs(DEFAULT_COST_MODEL, 160, 1440);
    const holderQueued = (ms: number) => decide([view("a", { queuedMs: ms, queuedTokens: 100, running: 1 }), view("b")], chain, { a: 90 });
    expect(holderQueued(saved - 10).worker.id).toBe("a");
    const d = holderQueued(saved + 10);
    expect(d.worker.id).toBe("b");
    expect(d.decidedBy).toBe("load");
    expect(d.guardTripped).toBe(true); // a longer match existed
  });

  it("a request never matches its last token: a fully cached prompt still prefills one", () => {
    const d = decide([view("a")], keys(10), { a: 10 }, { promptTokens: 160 });
    expect(d.estimates![0].uncachedTokens).toBe(1);
    expect(d.decidedBy).toBe("only-candidate");
  });

  it("idle workers with nothing cached tie; the tie goes by rendezvous hash of the request's last block, so requests spread", () => {
    const picks = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const d = decide([view("a"), view("b"), view("c"), view("d")], keys(5, `r${i}x`), {});
      expect(d.decidedBy).toBe("tie");
      picks.add(d.worker.id);
      expect(decide([view("a"), view("b"), view("c"), view("d")], keys(5, `r${i}x`), {}).worker.id).toBe(d.worker.id); // stable
    }
    expect(picks.size).toBe(4);
  });

  it("a worker in the middle of a step costs half a decode step more than an idle one", () => {
    const d = decide([view("busy", { running: 3, kvTokens: 10_000 }), view("idle")], keys(5), {});
    expect(d.worker.id).toBe("idle");
    const busy = d.estimates!.find((e) => e.worker.id === "busy")!;
    expect(busy.queueMs).toBeCloseTo((DEFAULT_COST_MODEL.decodeBaseMs + DEFAULT_COST_MODEL.decodePerKvTokenMs * 10_000) / 2);
  });

  it("n-sampling: copies of a prompt the holder is still computing stay there when recomputing elsewhere delays the requests behind it", () => {
    const chain = keys(512); // 8k tokens
    const X = prefillComputeMs(DEFAULT_COST_MODEL, 8192, 0);
    const holder = view("a", { queuedMs: X, queuedTokens: 8192, running: 1, kvTokens: 8192 });
    // With requests arriving (λ from the burst itself), a recompute on b delays b's next arrivals by X each.
    const busy = decide([holder, view("b")], chain, { a: 512 }, { arrivalsPerMs: 0.05 });
    expect(busy.worker.id).toBe("a");
    expect(busy.estimates!.find((e) => e.worker.id === "b")!.othersMs).toBeGreaterThan(X);
    // But when the holder's queue is long, recomputing is faster, and the estimate says so.
    const swamped = view("a", { queuedMs: X + 5_000, queuedTokens: 200_000, running: 30, kvTokens: 200_000 });
    expect(decide([swamped, view("b")], chain, { a: 512 }, { arrivalsPerMs: 0.05 }).worker.id).toBe("b");
  });

  it("a prefix most recent requests share is charged only in part to the workers that lack it", () => {
    const popularity = new KeyPopularity();
    const system = keys(32, "sys"); // a 512-token system prompt
    for (let i = 0; i < 200; i++) popularity.observe([...system, ...keys(4, `u${i}x`)]);
    const request = [...system, ...keys(4, "new")];
    const workers = [view("holder", { running: 2, kvTokens: 2_000 }), view("fresh")];
    const d = decide(workers, request, { holder: 32 }, { popularity });
    const fresh = d.estimates!.find((e) => e.worker.id === "fresh")!;
    // 2 workers, 200 reuses in the window: the fresh worker is charged 2/200 of the system prompt's prefill.
    expect(fresh.sharedDiscountMs).toBeCloseTo((1 - 2 / 200) * prefillComputeMs(DEFAULT_COST_MODEL, 512, 0), 3);
    expect(d.worker.id).toBe("fresh"); // the busy holder's step in progress now outweighs what is left of the charge
    expect(d.decidedBy).toBe("shared-prefix");
    // Without popularity the system prompt counts in full, and the holder wins.
    expect(decide(workers, request, { holder: 32 }).worker.id).toBe("holder");
  });
});
