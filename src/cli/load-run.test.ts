import { describe, expect, it } from "vitest";
import { LoadRun, type LoadRecord } from "./load-run";

const run = () =>
  new LoadRun("t", { url: "http://127.0.0.1:9", model: "m", requests: 10, concurrency: 1, turns: 4, maxTokens: 8, seed: 1, systemPrompts: 1, systemSentences: 1, documentSentences: 0, thinkMs: 0, blockSize: 16 });
const record = (promptTokens: number, cachedTokens: number, previousPromptTokens: number | null, replica = "r1"): LoadRecord => ({
  replica,
  status: 200,
  ttftMs: 10,
  promptTokens,
  cachedTokens,
  previousPromptTokens,
  error: null,
});

describe("LoadRun summary", () => {
  it("counts a follow-up as finding its history when every whole block of the previous turn's prompt was cached", () => {
    const r = run();
    r.records.push(
      record(100, 0, null), // a first turn: not a follow-up
      record(140, 96, 100), // 100 tokens = 6 whole blocks (96): held
      record(180, 95, 140), // 140 → 8 whole blocks = 128: not held
      record(220, 128, 180), // 180 → 11 blocks = 176: not held
      record(0, 0, 220), // no usage reported: not counted
    );
    const s = r.summary();
    expect(s.historyHitRate).toBeCloseTo(1 / 3);
    expect(s.hitRate).toBeCloseTo((96 + 95 + 128) / (100 + 140 + 180 + 220));
  });

  it("has no history rate without follow-ups", () => {
    const r = run();
    r.records.push(record(100, 0, null));
    expect(r.summary().historyHitRate).toBeNull();
  });
});
