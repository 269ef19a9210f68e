/**
 * Text → token ids, cached by segment, for any TokenEncoder (token-encoder.ts).
 *
 * Hugging Face tokenizes the text between added tokens independently (added-token-splitter.ts), so
 * ids(text) = concat(ids(segment) | id(added token)) plus, with add_special_tokens, the
 * post-processor's fixed prefix/suffix (e.g. Llama 3's <|begin_of_text|>). Long segments are cut
 * further into chunks where that is exact (text-chunker.ts). Chat turns and RAG system prompts
 * repeat across requests, so the pieces' ids are cached (segment-cache.ts) and only new pieces are
 * encoded, in batches of bounded size, with the caller's deadline checked between waves of batches.
 * Pieces are keyed by a SHA-256 digest, never by the text itself: a piece is a slice of the rendered
 * prompt, and a V8 sliced string keeps its whole parent alive, so a text key would pin every prompt
 * it came from.
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
import { AddedTokenSplitter } from "./added-token-splitter";
import { BULK_CHARS, type BulkGate } from "./bulk-gate";
import type { AddedTokenInfo } from "./model-files";
import type { SegmentCache } from "./segment-cache";
import { textChunks } from "./text-chunker";
import { concatIds, equalIds, huggingFaceEncoder, type Affixes, type TokenEncoder } from "./token-encoder";

/** One piece of a text: known ids, or a text to encode. Pieces' ids concatenate to the text's ids. */
export interface EncodePiece {
  /** Names the piece's content for this tokenizer (a digest for text: it shares no memory with it). */
  readonly key: string;
  readonly ids: Uint32Array | null;
  readonly text: string | null;
}

/** Thrown by idsOf() when the caller's deadline passed before all pieces were encoded. */
export class DeadlineExceeded extends Error {
  constructor() {
    super("the decision deadline passed while tokenizing");
  }
}

/** Texts per encode call add up to at most this many characters (bounds a call's memory and time). */
const BATCH_CHARS = 32 * 1024;
/** Encode calls started together; the deadline is checked before each wave. */
const WAVE_BATCHES = 4;

/** Encodes a bulk batch elsewhere (bulk-encoder.ts), or answers null when it cannot right now. */
export type BulkEncode = (texts: readonly string[]) => Promise<Uint32Array[]> | null;

interface Deferred {
  readonly promise: Promise<Uint32Array>;
  resolve(ids: Uint32Array): void;
  reject(err: unknown): void;
}

export class SegmentedEncoder {
  /** Pieces being encoded right now, by key: concurrent requests with one new prompt share the work. */
  private readonly inFlight = new Map<string, Promise<Uint32Array>>();

  private constructor(
    private readonly encoder: TokenEncoder,
    private readonly cache: SegmentCache,
    private readonly namespace: string,
    private readonly splitter: AddedTokenSplitter | null,
    private readonly affixes: Affixes | null,
    private readonly chunked: boolean,
    private readonly gate: BulkGate | null,
    private readonly bulk: BulkEncode | null,
  ) {}

  /**
   * `namespace` keeps this tokenizer's cache keys apart from other tokenizers' in a shared cache.
   * `pipeline.chunkable`: long segments may be cut (text-chunker.ts), checked on the probe too.
   * `gate`: bounds bulk encoding across threads (bulk-gate.ts); `bulk`: where bulk batches go first
   * (bulk-encoder.ts), encoded here when it answers null or fails.
   */
  static async create(
    backend: Tokenizer | TokenEncoder,
    addedTokens: readonly AddedTokenInfo[],
    pipeline: { readonly preTokenizer: unknown; readonly chunkable?: boolean },
    cache: SegmentCache,
    namespace: string,
    gate: BulkGate | null = null,
    bulk: BulkEncode | null = null,
  ): Promise<SegmentedEncoder> {
    const encoder = "encodeSegments" in backend ? backend : huggingFaceEncoder(backend);
    const whole = new SegmentedEncoder(encoder, cache, namespace, null, null, false, gate, null);
    if (!segmentable(addedTokens, pipeline.preTokenizer)) return whole;
    const splitter = new AddedTokenSplitter(addedTokens);
    const chunked = pipeline.chunkable === true;
    const probe = probeText(addedTokens, chunked);
    const candidate = new SegmentedEncoder(encoder, cache, namespace, splitter, null, chunked, gate, null);
    const [segmented, reference] = await Promise.all([candidate.encode(probe, false), whole.encodeWhole(probe, false)]);
    if (!equalIds(segmented, reference)) return whole;
    return new SegmentedEncoder(encoder, cache, namespace, splitter, await encoder.affixes(), chunked, gate, bulk);
  }

  /** True when text is split and cached; false when every call encodes the whole text. */
  get segmented(): boolean {
    return this.splitter !== null;
  }

  async encode(text: string, addSpecialTokens: boolean): Promise<Uint32Array> {
    const pieces = this.pieces(text, addSpecialTokens);
    return pieces === null ? this.encodeWhole(text, addSpecialTokens) : concatIds(await this.idsOf(pieces));
  }

  /** The reference path: the whole text in one call, no cache. */
  encodeWhole(text: string, addSpecialTokens: boolean): Promise<Uint32Array> {
    return this.encoder.encodeWhole(text, addSpecialTokens);
  }

  /** The text as pieces, or null where only encoding the whole text is exact. */
  pieces(text: string, addSpecialTokens: boolean): EncodePiece[] | null {
    const stream = this.pieceStream(text, addSpecialTokens);
    return stream === null ? null : [...stream];
  }

  /**
   * pieces(), one at a time: a long segment is cut and its chunks digested only as far as they are
   * read (a long new prompt decided on its head is cut up to the head; prompt-keyer.ts).
   */
  pieceStream(text: string, addSpecialTokens: boolean): Generator<EncodePiece> | null {
    if (this.splitter === null || (addSpecialTokens && this.affixes === null)) return null;
    return this.generatePieces(this.splitter, text, addSpecialTokens);
  }

  private *generatePieces(splitter: AddedTokenSplitter, text: string, addSpecialTokens: boolean): Generator<EncodePiece> {
    if (addSpecialTokens && this.affixes!.prefix.length > 0) yield { key: `${this.namespace}^`, ids: this.affixes!.prefix, text: null };
    for (const piece of splitter.split(text)) {
      if (typeof piece === "number") yield { key: `${this.namespace}#${piece}`, ids: Uint32Array.of(piece), text: null };
      else yield* this.textPieces(piece);
    }
    if (addSpecialTokens && this.affixes!.suffix.length > 0) yield { key: `${this.namespace}$`, ids: this.affixes!.suffix, text: null };
  }

  /**
   * Each piece's ids: known, cached, shared with a concurrent caller, or encoded now. New texts are
   * encoded in batches of at most BATCH_CHARS, WAVE_BATCHES at a time; once `expired()` says so,
   * no further wave starts and DeadlineExceeded is thrown (what was encoded stays cached).
   * `background`: no decision waits for these ids, so bulk batches go to the bulk encoder (a lower
   * OS priority) where there is one; a decision's own batches are always encoded here, at the
   * thread's priority — a prompt new to this router may be cached on a replica, and its routing
   * must not be starved by warm traffic.
   */
  async idsOf(pieces: readonly EncodePiece[], expired: () => boolean = () => false, background = false): Promise<Uint32Array[]> {
    const parts: Uint32Array[] = new Array(pieces.length);
    const missing = new Map<string, { text: string; positions: number[] }>(); // by key: a repeat is encoded once
    pieces.forEach((piece, i) => {
      if (piece.ids !== null) return void (parts[i] = piece.ids);
      const cached = this.cache.get(piece.key);
      if (cached !== undefined) return void (parts[i] = cached);
      const entry = missing.get(piece.key);
      if (entry === undefined) missing.set(piece.key, { text: piece.text!, positions: [i] });
      else entry.positions.push(i);
    });
    if (missing.size === 0) return parts;
    const waits: Promise<void>[] = [];
    const fresh: [string, string][] = [];
    // Pieces a background caller is encoding at a lower priority: a decision never waits for those,
    // it encodes them here (settling the background's wait too).
    const promoted = new Map<string, (ids: Uint32Array) => void>();
    for (const [key, entry] of missing) {
      const fill = (ids: Uint32Array) => entry.positions.forEach((i) => (parts[i] = ids));
      const pending = this.inFlight.get(key);
      if (pending && !background && this.backgroundKeys.has(key)) {
        promoted.set(key, fill);
        fresh.push([key, entry.text]);
        continue;
      }
      // A piece another caller gave up on (its deadline passed) is encoded here after all.
      const retry = async () => {
        if (expired()) throw new DeadlineExceeded();
        const [ids] = await this.encodeBatch([entry.text], background);
        this.cache.set(key, ids);
        fill(ids);
      };
      if (pending) waits.push(pending.then(fill, retry));
      else {
        fresh.push([key, entry.text]);
        waits.push(this.register(key, background).then(fill));
      }
    }
    const encoding = this.encodeFresh(fresh, expired, background, promoted);
    await Promise.all([encoding, ...waits]);
    return parts;
  }

  /** A background bulk batch goes to the bulk encoder first; it is encoded here when that fails or is unavailable. */
  private encodeBatch(texts: readonly string[], background: boolean): Promise<Uint32Array[]> {
    let chars = 0;
    for (const t of texts) chars += t.length;
    const here = () => (this.gate === null ? this.encoder.encodeSegments(texts) : this.gate.run(chars, () => this.encoder.encodeSegments(texts)));
    const elsewhere = background && chars >= BULK_CHARS && this.bulk !== null ? this.bulk(texts) : null;
    return elsewhere === null ? here() : elsewhere.catch(here);
  }

  /**
   * The pieces of one text segment. A long one (a system prompt, a document) is cut and digested
   * once: its cuts are remembered under a fingerprint and reused when the same text comes again,
   * which one string comparison confirms (a 131 kB rendered prompt: pieces() in ~0.06 ms instead
   * of ~0.6 ms, measured on a 2-core VM).
   */
  private *textPieces(segment: string): Generator<EncodePiece> {
    if (segment.length < REMEMBERED_CHARS) {
      for (const chunk of this.chunked ? textChunks(segment) : [segment]) yield { key: this.keyOf(chunk), ids: null, text: chunk };
      return;
    }
    const where = `${this.namespace}~${fingerprint(segment)}`;
    const cuts = this.cache.getCuts(where);
    if (cuts !== undefined && cuts.text === segment) {
      let start = 0;
      for (let i = 0; i < cuts.keys.length; i++) {
        yield { key: cuts.keys[i], ids: null, text: segment.slice(start, cuts.ends[i]) };
        start = cuts.ends[i];
      }
      return;
    }
    // Cut as far as read; remembered once the whole segment has been read.
    const keys: string[] = [];
    const ends: number[] = [];
    let end = 0;
    for (const chunk of this.chunked ? textChunks(segment) : [segment]) {
      const key = this.keyOf(chunk);
      keys.push(key);
      ends.push((end += chunk.length));
      yield { key, ids: null, text: chunk };
    }
    this.cache.setCuts(where, { text: ownedCopy(segment), keys, ends: Uint32Array.from(ends) });
  }

  /** Cache key of a text piece: a digest (fixed size, shares no memory with the prompt). */
  private keyOf(text: string): string {
    return this.namespace + createHash("sha256").update(text).digest("base64");
  }

  private register(key: string, background: boolean): Promise<Uint32Array> {
    const deferred = defer();
    deferred.promise.catch(() => undefined); // a failure surfaces through encodeFresh
    this.inFlight.set(key, deferred.promise);
    this.deferreds.set(key, deferred);
    if (background) this.backgroundKeys.add(key);
    return deferred.promise;
  }

  private readonly deferreds = new Map<string, Deferred>();
  /** In-flight keys that only background callers are encoding (idsOf's `background`). */
  private readonly backgroundKeys = new Set<string>();

  private settle(key: string, ids: Uint32Array | null, err?: unknown): void {
    const deferred = this.deferreds.get(key);
    this.deferreds.delete(key);
    this.inFlight.delete(key);
    this.backgroundKeys.delete(key);
    if (ids !== null) {
      this.cache.set(key, ids);
      deferred?.resolve(ids);
    } else deferred?.reject(err);
  }

  /**
   * Encodes new texts in bounded batches and waves; settles every key, encoded or not — except a
   * `promoted` one (a background caller's, filled directly): its failure is left to that caller's own encode.
   */
  private async encodeFresh(
    fresh: readonly [string, string][],
    expired: () => boolean,
    background: boolean,
    promoted: ReadonlyMap<string, (ids: Uint32Array) => void>,
  ): Promise<void> {
    const batches = batchesOf(fresh);
    let next = 0;
    try {
      while (next < batches.length) {
        if (expired()) throw new DeadlineExceeded();
        const wave = batches.slice(next, next + WAVE_BATCHES);
        next += wave.length;
        await Promise.all(
          wave.map(async (batch) => {
            const ids = await this.encodeBatch(batch.map(([, text]) => text), background);
            batch.forEach(([key], k) => {
              promoted.get(key)?.(ids[k]);
              this.settle(key, ids[k]);
            });
          }),
        );
      }
    } catch (err) {
      for (const batch of batches) for (const [key] of batch) if (this.deferreds.has(key) && !promoted.has(key)) this.settle(key, null, err);
      throw err;
    }
  }
}

/** Segments at least this long have their cuts remembered (a shorter one costs one small digest). */
const REMEMBERED_CHARS = 4096;
const FINGERPRINT_SAMPLES = 64;

/** Length and a hash of characters sampled across the text: where its cuts are looked up. */
function fingerprint(text: string): string {
  let h = 0x811c9dc5;
  const step = text.length / FINGERPRINT_SAMPLES;
  for (let i = 0; i < FINGERPRINT_SAMPLES; i++) h = Math.imul(h ^ text.charCodeAt(Math.floor(i * step)), 0x01000193);
  return `${text.length}:${(h >>> 0).toString(36)}`;
}

/** A copy of the text that shares no memory with it (a slice would keep its whole prompt alive). */
function ownedCopy(text: string): string {
  return Buffer.from(text, "utf16le").toString("utf16le");
}

function defer(): Deferred {
  let resolve!: (ids: Uint32Array) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<Uint32Array>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Groups texts into batches of at most BATCH_CHARS characters (a longer text is a batch alone). */
function batchesOf(fresh: readonly [string, string][]): [string, string][][] {
  const batches: [string, string][][] = [];
  let current: [string, string][] = [];
  let chars = 0;
  for (const item of fresh) {
    if (current.length > 0 && chars + item[1].length > BATCH_CHARS) {
      batches.push(current);
      current = [];
      chars = 0;
    }
    current.push(item);
    chars += item[1].length;
  }
  if (current.length > 0) batches.push(current);
  return batches;
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

/**
 * Text with added tokens at the start, middle and end, and segments that touch them; with chunking,
 * also a segment long enough to be cut at both kinds of cut point.
 */
function probeText(addedTokens: readonly AddedTokenInfo[], chunked: boolean): string {
  const [a, b] = [addedTokens[0]?.content ?? "", addedTokens[addedTokens.length - 1]?.content ?? ""];
  const base = `${a}Hello wörld ${b}\n  x${a}${b} 你好 👋🏽\t1234 ${a}`;
  if (!chunked) return base;
  const line = "Ünïcode, 123 numbers and 'quotes' — don't  split\n  me wrongly?\nNext line  \n\nsays more\r\n";
  return base + line.repeat(200) + b;
}
