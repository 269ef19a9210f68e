import { describe, expect, it } from "vitest";
import { LoadBoard, type WorkerSample } from "./load-board";

const sample = (over: Partial<WorkerSample> = {}): WorkerSample => ({ requestedAtMs: 0, running: 0, waiting: 0, kvUsage: 0, kvCapacityTokens: 100_000, ...over });
const routed = (board: LoadBoard, at: number, uncached = 500, worker = "w1") =>
  board.record({ worker, promptTokens: 1000, uncachedTokens: uncached, prefillMs: uncached / 50, firstTokenAtMs: at + 100, doneAtMs: at + 2_000 }, at);

describe("LoadBoard", () => {
  it("without a sample, a worker's load is the router's ledger", () => {
    const b = new LoadBoard();
    routed(b, 0);
    expect(b.load("w1", 10)).toEqual({ queuedTokens: 500, queuedMs: 10, running: 1, kvTokens: 1000, sampleAgeMs: null });
  });

  it("a fresh sample shows other routers' work: waiting requests valued at this router's mean uncached prefill", () => {
    const b = new LoadBoard();
    routed(b, 0, 400);
    routed(b, 0, 600, "w2"); // mean uncached 500 tokens, 10 ms
    b.setSample("w1", sample({ requestedAtMs: 5, waiting: 4, running: 3, kvUsage: 0.2 }));
    const load = b.load("w1", 20);
    expect(load.queuedTokens).toBeCloseTo(4 * 500);
    expect(load.queuedMs).toBeCloseTo(4 * 10);
    expect(load.running).toBe(7);
    expect(load.kvTokens).toBeCloseTo(20_000);
    expect(load.sampleAgeMs).toBe(15);
  });

  it("work routed after the sample was requested is added to it (the sample cannot show it)", () => {
    const b = new LoadBoard();
    b.setSample("w1", sample({ requestedAtMs: 10, waiting: 0, running: 0 }));
    routed(b, 5, 300); // before the scrape: the sample covers it (and shows the worker idle)
    routed(b, 12, 700); // after: added
    const load = b.load("w1", 20);
    expect(load.queuedTokens).toBe(1_000); // max(ledger 1000, sample 0 + since 700)
    expect(b.load("w1", 20).running).toBe(2);
  });

  it("the larger view wins: a sample that saw less than the ledger does not erase the ledger's work", () => {
    const b = new LoadBoard();
    routed(b, 0, 2_000);
    b.setSample("w1", sample({ requestedAtMs: 1, waiting: 0, running: 0 }));
    expect(b.load("w1", 5).queuedTokens).toBe(2_000);
  });

  it("a sample older than staleAfterMs is ignored, and an older sample never replaces a newer one", () => {
    const b = new LoadBoard({ staleAfterMs: 100 });
    b.setSample("w1", sample({ requestedAtMs: 0, waiting: 50 }));
    routed(b, 0, 10);
    expect(b.load("w1", 50).queuedTokens).toBeGreaterThan(10);
    expect(b.load("w1", 150)).toMatchObject({ queuedTokens: 0, running: 1, sampleAgeMs: 150 }); // the ledger alone
    b.setSample("w1", sample({ requestedAtMs: 200, waiting: 0 }));
    b.setSample("w1", sample({ requestedAtMs: 120, waiting: 99 }));
    expect(b.sampleOf("w1")!.requestedAtMs).toBe(200);
  });

  it("snapshot() freezes a view per worker with its in-flight count and load", () => {
    const b = new LoadBoard();
    routed(b, 0);
    const views = b.snapshot([{ id: "w1", address: "a:1" }, { id: "w2", address: "a:2" }], (id) => (id === "w1" ? 3 : 0), 1);
    expect(Object.isFrozen(views) && Object.isFrozen(views[0]) && Object.isFrozen(views[0].load)).toBe(true);
    expect(views.map((v) => [v.id, v.inFlight, v.load?.running])).toEqual([["w1", 3, 1], ["w2", 0, 0]]);
  });
});
