/**
 * The tokenizer libraries behind one interface: Hugging Face's Rust tokenizer (npm `tokenizers`,
 * for tokenizer.json) and OpenAI's tiktoken (npm `tiktoken`, WASM, for *.tiktoken / tiktoken.model
 * BPE files). SegmentedEncoder splits, caches and chunks; a TokenEncoder only encodes.
 */
import type { Tiktoken } from "tiktoken";
import type { Tokenizer } from "tokenizers";

export interface TokenEncoder {
  /** Each text's ids, no special tokens added (texts hold no added token: the caller split them out). */
  encodeSegments(texts: readonly string[]): Promise<Uint32Array[]>;
  /** The reference path: the whole text in one call, added tokens matched, special tokens as asked. */
  encodeWhole(text: string, addSpecialTokens: boolean): Promise<Uint32Array>;
  /** The ids the post-processor adds around one sequence, if that is a fixed prefix/suffix. */
  affixes(): Promise<Affixes | null>;
}

export interface Affixes {
  readonly prefix: Uint32Array;
  readonly suffix: Uint32Array;
}

const NO_AFFIXES: Affixes = { prefix: new Uint32Array(0), suffix: new Uint32Array(0) };

/** Hugging Face's tokenizer; encoding runs on the libuv pool (async), off the calling thread. */
export function huggingFaceEncoder(tokenizer: Tokenizer): TokenEncoder {
  return {
    encodeSegments: async (texts) => (await tokenizer.encodeBatch([...texts], { addSpecialTokens: false })).map((e) => Uint32Array.from(e.getIds())),
    encodeWhole: async (text, addSpecialTokens) => Uint32Array.from((await tokenizer.encode(text, null, { addSpecialTokens })).getIds()),
    affixes: () => deriveAffixes(tokenizer),
  };
}

/**
 * tiktoken: synchronous WASM on the calling thread (a tokenizer worker thread, never the event
 * loop). Added tokens are matched by the caller's splitter; `encodeWhole` lets tiktoken match them
 * itself (allowed_special "all"), as Python's `Encoding.encode(text, allowed_special="all")` does.
 * No post-processor: add_special_tokens adds nothing.
 */
export function tiktokenEncoder(encoding: Tiktoken): TokenEncoder {
  return {
    encodeSegments: async (texts) => texts.map((t) => encoding.encode_ordinary(t)),
    encodeWhole: async (text) => encoding.encode(text, "all"),
    affixes: async () => NO_AFFIXES,
  };
}

/** Probes the post-processor with two texts; the affixes must be the same for both. */
async function deriveAffixes(tokenizer: Tokenizer): Promise<Affixes | null> {
  const found: Affixes[] = [];
  for (const probe of ["probe text", "Another, longer probe: 12 words and ünïcode."]) {
    const [plain, special] = await Promise.all([
      tokenizer.encode(probe, null, { addSpecialTokens: false }),
      tokenizer.encode(probe, null, { addSpecialTokens: true }),
    ]);
    const affixes = splitAffixes(Uint32Array.from(plain.getIds()), Uint32Array.from(special.getIds()));
    if (affixes === null) return null;
    found.push(affixes);
  }
  const [x, y] = found;
  return equalIds(x.prefix, y.prefix) && equalIds(x.suffix, y.suffix) ? x : null;
}

function splitAffixes(plain: Uint32Array, special: Uint32Array): Affixes | null {
  for (let start = 0; start + plain.length <= special.length; start++) {
    if (equalIds(special.subarray(start, start + plain.length), plain)) {
      return { prefix: special.slice(0, start), suffix: special.slice(start + plain.length) };
    }
  }
  return null;
}

export function equalIds(a: Uint32Array, b: Uint32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function concatIds(parts: readonly Uint32Array[]): Uint32Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint32Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
