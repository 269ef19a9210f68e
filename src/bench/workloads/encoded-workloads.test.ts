import { describe, expect, it } from "vitest";
import { blockKeys } from "../../prefix/block-keys";
import { kvKeys } from "../metrics/kv-keys";
import { buildWorkload } from "./build-workload";
import { BENCH_ROOT, promptEncoder } from "./prompt-encoder";

describe("workloads encoded with the router's own parse + template + tokenizer", () => {
  it("chat: every follow-up's prompt starts with the previous turn's prompt and generated reply", async () => {
    const w = await buildWorkload({ kind: "chat", params: { seed: 11, durationS: 20, conversationsPerS: 1 } });
    const byId = new Map(w.requests.map((r) => [r.id, r]));
    let followUps = 0;
    for (const r of w.requests) {
      expect(r.keys).toEqual(blockKeys(r.prompt(), 16, BENCH_ROOT));
      expect(JSON.parse(r.body()).max_tokens).toBe(r.maxTokens);
      if (!r.after) continue;
      followUps++;
      const prev = byId.get(r.after.id)!;
      const kv = kvKeys(prev, 16, BENCH_ROOT);
      expect(kv.length).toBeGreaterThan(prev.keys.length - 1);
      expect(r.keys.slice(0, kv.length)).toEqual(kv);
    }
    expect(followUps).toBeGreaterThan(0);
  });

  it("is built once per spec (tokenization is cached in memory)", async () => {
    const spec = { kind: "chat", params: { seed: 11, durationS: 20, conversationsPerS: 1 } } as const;
    expect(await buildWorkload(spec)).toBe(await buildWorkload({ ...spec, params: { ...spec.params } }));
  });

  it("shared prefix: a group's prompts share their system prompt's blocks, other groups do not", async () => {
    const w = await buildWorkload({ kind: "shared-prefix", params: { seed: 2, groups: 2, promptsPerGroup: 3, systemTokens: 256, questionTokens: 32, outputTokens: 8, requestsPerS: 10 } });
    expect(w.requests).toHaveLength(6);
    const g0 = w.requests.filter((r) => r.session === "group-0");
    const g1 = w.requests.filter((r) => r.session === "group-1");
    const shared = (a: readonly string[], b: readonly string[]) => {
      let n = 0;
      while (n < Math.min(a.length, b.length) && a[n] === b[n]) n++;
      return n;
    };
    expect(shared(g0[0].keys, g0[1].keys)).toBeGreaterThan(12); // ≈ 256 system tokens / 16
    expect(shared(g0[0].keys, g1[0].keys)).toBeLessThan(2); // only the template's opening
    for (const r of w.requests) expect(r.maxTokens).toBe(8);
  });

  it("token counts of plain text come from the same tokenizer", async () => {
    const enc = await promptEncoder();
    expect((await enc.tokens("hello world")).length).toBe(2);
    expect(Array.from(await enc.tokens("<|im_end|>"))).toHaveLength(1);
  });
});
