/**
 * Text → token ids with the model's Rust tokenizer (npm `tokenizers`), cached by segment.
 *
 * Hugging Face tokenizes the text between added tokens independently (added-token-splitter.ts), so
 * ids(text) = concat(ids(segment) | id(added token)) plus, with add_special_tokens, the
 * post-processor's fixed prefix/suffix (e.g. Llama 3's <|begin_of_text|>). Chat turns and RAG system
 * prompts repeat across requests, so the segments' ids are cached (segment-cache.ts) and only the
 * new segments of a request are encoded, in one encodeBatch call. Segments are keyed by a SHA-256
 * digest, never by the segment itself: a segment is a slice of the rendered prompt, and a V8 sliced
 * string keeps its whole parent alive, so a text key would pin every prompt it came from.
 *
 * The segmented path is used only where it is provably the same as encoding the whole text:
 *   - every added token has lstrip, rstrip, single_word and normalized false (otherwise matching
 *     depends on neighbours or on normalized text);
 *   - no Metaspace pre-tokenizer with prepend_scheme "first" (it treats the text's first segment
 *     differently from later ones);
 *   - a probe text gives equal ids both ways at load time;
 *   - with add_special_tokens, the post-processor's additions are a prefix/suffix that two probes agree on.
 * Otherwise the whole text is encoded, uncached.
 */
import { createHash } from "node:crypto";
import type { Tokenizer } from "tokenizers";
import { AddedTokenSplitter, type Piece } from "./added-token-splitter";
import type { AddedTokenInfo } from "./model-files";
import type { SegmentCache } from "./segment-cache";

interface MissingSegment {
  readonly text: string;
  readonly positions: number[];
}

interface Affixes {
  readonly prefix: Uint32Array;
  readonly suffix: Uint32Array;
}

export class SegmentedEncoder {
  /** Segments being encoded right now, by key: concurrent requests with one new prompt share the work. */
  private readonly inFlight = new Map<string, Promise<Uint32Array>>();

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly cache: SegmentCache,
    private readonly namespace: string,
    private readonly splitter: AddedTokenSplitter | null,
    private readonly affixes: Affixes | null,
  ) {}

  /** `namespace` keeps this tokenizer's cache keys apart from other tokenizers' in a shared cache. */
  static async create(
    tokenizer: Tokenizer,
    addedTokens: readonly AddedTokenInfo[],
    pipeline: { readonly preTokenizer: unknown },
    cache: SegmentCache,
    namespace: string,
  ): Promise<SegmentedEncoder> {
    const whole = new SegmentedEncoder(tokenizer, cache, namespace, null, null);
    if (!segmentable(addedTokens, pipeline.preTokenizer)) return whole;
    const splitter = new AddedTokenSplitter(addedTokens);
    const probe = probeText(addedTokens);
    const candidate = new SegmentedEncoder(tokenizer, cache, namespace, splitter, null);
    const [segmented, reference] = await Promise.all([candidate.encodeSegments(probe), whole.encodeWhole(probe, false)]);
    if (!equalIds(segmented, reference)) return whole;
    return new SegmentedEncoder(tokenizer, cache, namespace, splitter, await deriveAffixes(tokenizer));
  }

  /** True when text is split and cached; false when every call encodes the whole text. */
  get segmented(): boolean {
    return this.splitter !== null;
  }

  async encode(text: string, addSpecialTokens: boolean): Promise<Uint32Array> {
    if (this.splitter === null || (addSpecialTokens && this.affixes === null)) return this.encodeWhole(text, addSpecialTokens);
    const body = await this.encodeSegments(text);
    if (!addSpecialTokens) return body;
    const { prefix, suffix } = this.affixes!;
    return concat([prefix, body, suffix]);
  }

  /** The reference path: the whole text in one call, no cache. */
  async encodeWhole(text: string, addSpecialTokens: boolean): Promise<Uint32Array> {
    const encoding = await this.tokenizer.encode(text, null, { addSpecialTokens });
    return Uint32Array.from(encoding.getIds());
  }

  private async encodeSegments(text: string): Promise<Uint32Array> {
    const pieces: Piece[] = this.splitter!.split(text);
    const parts: (Uint32Array | undefined)[] = new Array(pieces.length);
    const missing = new Map<string, MissingSegment>(); // by key, so a repeat is encoded once
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (typeof piece === "number") {
        parts[i] = Uint32Array.of(piece);
        continue;
      }
      const key = this.keyOf(piece);
      const cached = this.cache.get(key);
      if (cached !== undefined) parts[i] = cached;
      else {
        const entry = missing.get(key);
        if (entry === undefined) missing.set(key, { text: piece, positions: [i] });
        else entry.positions.push(i);
      }
    }
    if (missing.size > 0) {
      const waits: Promise<void>[] = [];
      const fresh: [string, MissingSegment][] = [];
      for (const [key, entry] of missing) {
        const pending = this.inFlight.get(key);
        if (pending) waits.push(pending.then((ids) => entry.positions.forEach((i) => (parts[i] = ids))));
        else fresh.push([key, entry]);
      }
      if (fresh.length > 0) waits.push(this.encodeFresh(fresh, parts));
      await Promise.all(waits);
    }
    return concat(parts as Uint32Array[]);
  }

  /** Cache key of a segment: a digest (fixed size, shares no memory with the prompt). */
  private keyOf(segment: string): string {
    return this.namespace + createHash("sha256").update(segment).digest("base64");
  }

  /** Encodes new segments in one batch, caches them, and lets concurrent callers wait on them. */
  private encodeFresh(fresh: readonly [string, MissingSegment][], parts: (Uint32Array | undefined)[]): Promise<void> {
    const texts = fresh.map(([, entry]) => entry.text);
    const batch = this.tokenizer.encodeBatch(texts, { addSpecialTokens: false }).then((encodings) => encodings.map((e) => Uint32Array.from(e.getIds())));
    fresh.forEach(([key], k) => {
      const one = batch.then((all) => all[k]);
      one.catch(() => undefined); // a failure surfaces through `batch` below
      this.inFlight.set(key, one);
    });
    return batch
      .then((all) => {
        fresh.forEach(([key, entry], k) => {
          this.cache.set(key, all[k]);
          for (const i of entry.positions) parts[i] = all[k];
        });
      })
      .finally(() => {
        for (const [key] of fresh) this.inFlight.delete(key);
      });
  }
}

function segmentable(addedTokens: readonly AddedTokenInfo[], preTokenizer: unknown): boolean {
  const plain = addedTokens.every((t) => !t.lstrip && !t.rstrip && !t.singleWord && !t.normalized);
  return plain && !hasFirstOnlyMetaspace(preTokenizer);
}

function hasFirstOnlyMetaspace(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasFirstOnlyMetaspace);
  if (typeof node !== "object" || node === null) return false;
  const record = node as Record<string, unknown>;
  if (record.type === "Metaspace" && record.prepend_scheme === "first") return true;
  return Object.values(record).some(hasFirstOnlyMetaspace);
}

/** Text with added tokens at the start, middle and end, and segments that touch them. */
function probeText(addedTokens: readonly AddedTokenInfo[]): string {
  const [a, b] = [addedTokens[0]?.content ?? "", addedTokens[addedTokens.length - 1]?.content ?? ""];
  return `${a}Hello wörld ${b}\n  x${a}${b} 你好 👋🏽\t1234 ${a}`;
}

/** The ids the post-processor adds around a single sequence, if they are a fixed prefix/suffix. */
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

function equalIds(a: Uint32Array, b: Uint32Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function concat(parts: readonly Uint32Array[]): Uint32Array {
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
