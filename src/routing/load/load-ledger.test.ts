import { describe, expect, it } from "vitest";
import { LoadLedger, type RoutedWork } from "./load-ledger";

const work = (over: Partial<RoutedWork> = {}): RoutedWork => ({
  worker: "w1",
  promptTokens: 1000,
  uncachedTokens: 600,
  prefillMs: 20,
  firstTokenAtMs: 100,
  doneAtMs: 1_000,
  ...over,
});

describe("LoadLedger", () => {
  it("queues prefill until the predicted first token and holds the sequence until the predicted completion", () => {
    const l = new LoadLedger();
    l.add(work(), 0);
    expect(l.totals("w1", 50)).toEqual({ queuedTokens: 600, queuedMs: 20, running: 1, kvTokens: 1000 });
    expect(l.totals("w1", 100)).toEqual({ queuedTokens: 0, queuedMs: 0, running: 1, kvTokens: 1000 });
    expect(l.totals("w1", 1_000)).toEqual({ queuedTokens: 0, queuedMs: 0, running: 0, kvTokens: 0 });
    expect(l.size).toBe(0);
  });

  it("keeps workers apart and sums entries", () => {
    const l = new LoadLedger();
    l.add(work(), 0);
    l.add(work({ uncachedTokens: 100, prefillMs: 5 }), 10);
    l.add(work({ worker: "w2" }), 10);
    expect(l.totals("w1", 20)).toMatchObject({ queuedTokens: 700, queuedMs: 25, running: 2 });
    expect(l.totals("w2", 20)).toMatchObject({ queuedTokens: 600, running: 1 });
    expect(l.totals("w3", 20)).toMatchObject({ queuedTokens: 0, running: 0 });
  });

  it("the end of a non-streaming request's stream retires it at once; a second end changes nothing", () => {
    const l = new LoadLedger();
    const id = l.add(work(), 0);
    l.add(work({ uncachedTokens: 1 }), 0);
    l.end(id, false);
    l.end(id, false);
    expect(l.totals("w1", 10)).toMatchObject({ queuedTokens: 1, running: 1 });
  });

  it("a streaming request whose stream ends early keeps its prefill queued until the predicted first token", () => {
    const l = new LoadLedger();
    const id = l.add(work(), 0);
    l.end(id, true); // the stream ended at the response headers, before the prefill
    expect(l.totals("w1", 50)).toMatchObject({ queuedTokens: 600, running: 1 });
    expect(l.totals("w1", 100)).toMatchObject({ queuedTokens: 0, running: 0 }); // then it is gone entirely
  });

  it("a streaming request whose stream ends after its first token is retired at once", () => {
    const l = new LoadLedger();
    const id = l.add(work(), 0);
    expect(l.totals("w1", 200)).toMatchObject({ running: 1 });
    l.end(id, true);
    expect(l.totals("w1", 200)).toMatchObject({ running: 0 });
  });

  it("since() counts only work routed at or after a time, still alive", () => {
    const l = new LoadLedger();
    l.add(work({ uncachedTokens: 1 }), 0);
    const late = l.add(work({ uncachedTokens: 10 }), 40);
    l.add(work({ uncachedTokens: 100 }), 60);
    expect(l.since("w1", 40, 70)).toMatchObject({ queuedTokens: 110, running: 2 });
    l.end(late, false);
    expect(l.since("w1", 40, 70)).toMatchObject({ queuedTokens: 100, running: 1 });
    expect(l.since("w1", 61, 70)).toMatchObject({ queuedTokens: 0, running: 0 });
  });

  it("never goes negative and forgets idle workers over many entries (no drift)", () => {
    const l = new LoadLedger();
    const ids: number[] = [];
    for (let i = 0; i < 2_000; i++) ids.push(l.add(work({ uncachedTokens: i % 7, prefillMs: 0.1 * (i % 13), firstTokenAtMs: i + 5, doneAtMs: i + 50 }), i));
    ids.forEach((id, i) => i % 3 === 0 && l.end(id, i % 2 === 0));
    expect(l.totals("w1", 10_000)).toEqual({ queuedTokens: 0, queuedMs: 0, running: 0, kvTokens: 0 });
    expect(l.size).toBe(0);
  });
});
