import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { blockKeys } from "../../prefix/block-keys";
import { hashBlockTokens, mooncakeWorkload } from "./mooncake-trace";
import { mtragConversations } from "./mtrag-rag";
import { BENCH_ROOT } from "./prompt-encoder";
import { Rng } from "./rng";
import { shareGptConversations } from "./sharegpt-chat";
import { DATA_DIR, mtragTasks, syntheticText } from "./text-corpus";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";

const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;

describe("Rng", () => {
  it("is deterministic per seed and differs across seeds", () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const c = new Rng(8);
    const xs = Array.from({ length: 5 }, () => a.uint32());
    expect(Array.from({ length: 5 }, () => b.uint32())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.uint32())).not.toEqual(xs);
  });

  it.each([
    { name: "uniform mean ½", draw: (r: Rng) => r.next(), expected: 0.5, tol: 0.01 },
    { name: "exponential mean", draw: (r: Rng) => r.exponential(15), expected: 15, tol: 0.5 },
    { name: "geometric mean 3.51", draw: (r: Rng) => r.geometric(1 / 3.51), expected: 3.51, tol: 0.08 },
    { name: "log-normal mean = median·e^(σ²/2)", draw: (r: Rng) => r.logNormal(220, 0.75), expected: 220 * Math.exp(0.75 ** 2 / 2), tol: 8 },
  ])("$name", ({ draw, expected, tol }) => {
    const r = new Rng(1);
    expect(Math.abs(mean(Array.from({ length: 40_000 }, () => draw(r))) - expected)).toBeLessThan(tol);
  });
});

describe("ShareGPT-shaped chat script", () => {
  const params = { seed: 3, durationS: 400, conversationsPerS: 5 };

  it("is reproducible with a seed", () => {
    expect(shareGptConversations(params)).toEqual(shareGptConversations(params));
    expect(shareGptConversations({ ...params, seed: 4 })).not.toEqual(shareGptConversations(params));
  });

  it("matches the published shape: 3.51 turns per conversation, Poisson arrivals, think time", () => {
    const convs = shareGptConversations(params);
    expect(Math.abs(convs.length - 2000)).toBeLessThan(150); // 5/s × 400 s
    expect(Math.abs(mean(convs.map((c) => c.turns.length)) - 3.51)).toBeLessThan(0.2);
    const gaps = convs.slice(1).map((c, i) => c.startMs - convs[i].startMs);
    expect(Math.abs(mean(gaps) - 200)).toBeLessThan(15);
    const thinks = convs.flatMap((c) => c.turns.slice(1).map((t) => t.thinkMs));
    expect(Math.abs(mean(thinks) - 15_000)).toBeLessThan(1_000);
    for (const c of convs) expect(c.startMs).toBeLessThan(400_000);
  });
});

describe("MTRAG-shaped RAG script", () => {
  it("replays each task's real turns with 5 passages on every turn, passages kept out of history", () => {
    const convs = mtragConversations({ seed: 1, conversationsPerS: 2 });
    const tasks = mtragTasks();
    expect(convs).toHaveLength(tasks.length);
    expect(mean(convs.map((c) => c.turns.length))).toBeGreaterThan(4);
    for (const c of convs) {
      for (const t of c.turns) {
        expect((t.user.match(/^\[\d\] /gm) ?? []).length).toBe(5);
        expect(t.user.endsWith(`Question: ${t.userInHistory}`)).toBe(true);
      }
    }
    // The final turn carries the task's own reference passages first and its reference answer.
    const task = tasks[0];
    const conv = convs.find((c) => c.session === "rag-0")!;
    const last = conv.turns[conv.turns.length - 1];
    if (task.contexts.length > 0) expect(last.user).toContain(task.contexts[0]);
    expect(last.reply).toBe(task.answer);
  });

  it("copies are new users sharing only the system prompt", () => {
    const convs = mtragConversations({ seed: 1, conversationsPerS: 2, copies: 2, tasks: 3 });
    expect(convs).toHaveLength(6);
    const copy = convs.find((c) => c.session === "rag-0-u1")!;
    expect(copy.turns[0].userInHistory.startsWith("(user 1) ")).toBe(true);
  });
});

describe("synthetic text", () => {
  it("is deterministic and about the asked length in words", () => {
    const a = syntheticText(new Rng(5), 200);
    expect(syntheticText(new Rng(5), 200)).toBe(a);
    const words = a.split(/\s+/).length;
    expect(words).toBeGreaterThan(140);
    expect(words).toBeLessThan(170);
  });
});

describe("Mooncake trace replay", () => {
  const dir = mkdtempSync(join(tmpdir(), "mooncake-"));
  const file = join(dir, "t.jsonl");
  writeFileSync(
    file,
    [
      { timestamp: 1000, input_length: 1024, output_length: 5, hash_ids: [1, 2] },
      { timestamp: 1500, input_length: 700, output_length: 0, hash_ids: [1, 3] },
      { timestamp: 2000, input_length: 40, output_length: 9, hash_ids: [9] },
    ]
      .map((r) => JSON.stringify(r))
      .join("\n"),
  );

  it("turns hash ids into deterministic blocks, chained: equal leading ids → equal leading keys", () => {
    const w = mooncakeWorkload({ file, timeScale: 2 });
    const [a, b, c] = w.requests;
    expect([a.arrivalMs, b.arrivalMs, c.arrivalMs]).toEqual([0, 1000, 2000]);
    expect([a.keys.length, b.keys.length, c.keys.length]).toEqual([64, 43, 2]);
    expect(b.keys.slice(0, 32)).toEqual(a.keys.slice(0, 32));
    expect(b.keys[32]).not.toBe(a.keys[32]);
    expect(b.maxTokens).toBe(1); // output_length 0 still generates one token
    expect(blockKeys(a.prompt(), 16, BENCH_ROOT)).toEqual(a.keys);
    expect(b.prompt()).toHaveLength(700);
    expect(Array.from(a.prompt().subarray(0, 512))).toEqual(Array.from(hashBlockTokens(1, 512)));
    expect(JSON.parse(c.body())).toMatchObject({ model: "qwen3", max_tokens: 9 });
  });

  it("loads the bundled synthetic trace", () => {
    const w = mooncakeWorkload({ file: join(DATA_DIR, "mooncake_synthetic_trace.jsonl"), limit: 50 });
    expect(w.requests).toHaveLength(50);
    for (const r of w.requests) expect(r.keys.length).toBe(Math.floor(r.promptTokens / 16));
  });

  it("rejects a malformed line", () => {
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, `{"timestamp": 0}\n`);
    expect(() => mooncakeWorkload({ file: bad })).toThrow(/line 1/);
  });
});
