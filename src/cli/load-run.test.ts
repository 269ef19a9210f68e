import { describe, expect, it } from "vitest";
import { decisionOf, LoadRun, type LoadRecord } from "./load-run";

const run = () =>
  new LoadRun("t", { url: "http://127.0.0.1:9", model: "m", requests: 10, concurrency: 1, turns: 4, maxTokens: 8, seed: 1, systemPrompts: 1, systemSentences: 1, documentSentences: 0, thinkMs: 0, blockSize: 16 });
const record = (promptTokens: number, cachedTokens: number, previousPromptTokens: number | null, decision: string | null = "hit"): LoadRecord => ({
  replica: "r1",
  status: 200,
  ttftMs: 10,
  promptTokens,
  cachedTokens,
  decision,
  previousPromptTokens,
  error: null,
});

describe("LoadRun summary", () => {
  it("counts a follow-up as finding its history when every whole block of the previous turn's prompt was cached", () => {
    const r = run();
    r.records.push(
      record(100, 0, null, "miss"), // a first turn: not a follow-up
      record(140, 96, 100), // 100 tokens = 6 whole blocks (96): held
      record(180, 95, 140), // 140 → 8 whole blocks = 128: not held
      record(220, 128, 180), // 180 → 11 blocks = 176: not held
      record(0, 0, 220, "fallback/decision-timeout"), // no usage reported: not counted
    );
    const s = r.summary();
    expect(s.historyHitRate).toBeCloseTo(1 / 3);
    expect(s.hitRate).toBeCloseTo((96 + 95 + 128) / (100 + 140 + 180 + 220));
    expect(s.decisions).toEqual({ miss: 1, hit: 3, "fallback/decision-timeout": 1 });
  });

  it("has no history rate without follow-ups", () => {
    const r = run();
    r.records.push(record(100, 0, null, null));
    expect(r.summary().historyHitRate).toBeNull();
    expect(r.summary().decisions).toEqual({}); // no router in the path: no debug headers
  });

  it("reads the decision from the router's debug headers, echoing only its own short reason tokens", () => {
    const h = (entries: Record<string, string>) => new Headers(entries);
    expect(decisionOf(h({}))).toBeNull();
    expect(decisionOf(h({ "x-prefix-router-decision": "hit" }))).toBe("hit");
    expect(decisionOf(h({ "x-prefix-router-decision": "fallback", "x-prefix-router-reason": "store-error" }))).toBe("fallback/store-error");
    expect(decisionOf(h({ "x-prefix-router-decision": "fallback", "x-prefix-router-reason": "<script>".repeat(20) }))).toBe("fallback");
    expect(decisionOf(h({ "x-prefix-router-decision": "x".repeat(500) }))).toBe("other");
  });
});

describe("the load table", () => {
  it("lists the router's decisions under the table, for the runs that had a router", async () => {
    const { renderRuns } = await import("./load");
    const routed = run();
    routed.records.push(record(100, 0, null, "miss"), record(140, 96, 100, "hit"), record(150, 0, 140, "fallback/decision-timeout"));
    const baseline = run();
    baseline.records.push(record(100, 0, null, null));
    const text = renderRuns([
      { name: "routed", summary: routed.summary(), total: 3 },
      { name: "baseline", summary: baseline.summary(), total: 1 },
    ]);
    expect(text.split("\n").at(-1)).toBe("routed decisions: miss 1, hit 1, fallback/decision-timeout 1");
    expect(text).not.toMatch(/baseline decisions/);
    expect(text.split("\n")[0]).toMatch(/history cached/);
  });
});
