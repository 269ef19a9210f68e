/**
 * Prompt → token count and block keys (as bytes), the whole tokenizer side of a decision: render the
 * chat template, tokenize, hash. Runs in a tokenizer worker thread (tokenizer-pool.ts), or in
 * process for `prefix-router explain` and tests.
 *
 * Work shared with earlier prompts is not done again:
 *   - the ids of repeated pieces come from the segment cache (segmented-encoder.ts);
 *   - the keys of a repeated prefix come from the chain-state cache (prefix/chain-state-cache.ts).
 *     A point of the prompt is named by a chained digest of the pieces before it
 *     (prompt-pieces.ts), so a prompt continues hashing from the last point it shares with an
 *     earlier one and asks the encoder only for the pieces after it.
 * The rendered text itself is not reused: templates may read any message anywhere, so the text is
 * rendered in full each time (in the worker, off the event loop).
 *
 * Keys are chained, so no worker can match a prompt past the first block it does not hold. When a
 * prompt brings much new text, the keyer keys a head of it first and asks the caller (a HeadProbe:
 * the index and the speculation overlay) whether any worker holds every block keyed so far; while
 * one does, it keys a head four times longer, and so on. Once none does, the rest of the prompt
 * cannot change any worker's match: the keys of the head are the answer (`complete` false, the
 * token count estimated), and the rest is keyed after the answer, as background work — into the
 * whole prompt's keys (`rest`: the chosen worker computes all of it, and the router records them as
 * its route), warming the thread's caches for a follow-up — at most MAX_BACKGROUND prompts
 * at once per thread, MAX_WAITING more in line (and MAX_WAITING_CHARS of text; past that dropped,
 * counted), on the bulk encoder process where there is one.
 * A text whose beginning the thread never keyed has no cached point past that beginning, so its
 * pieces are cut only as far as its heads reach before the answer (prompt-pieces.ts).
 */
import { fail, ok, type Outcome } from "../failure";
import { blockKeyBytes, hashBlocksInto, KEY_BYTES, type BlockKeyBytes } from "../prefix/block-keys";
import { ChainStateCache, type ChainState, type RunPoint } from "../prefix/chain-state-cache";
import type { Prompt } from "../request/prompt";
import type { SegmentCacheStats } from "./segment-cache";
import { RenderCost } from "./render-cost";
import { PromptPieces, SeenBeginnings } from "./prompt-pieces";
import { DeadlineExceeded } from "./segmented-encoder";
import type { ModelTokenizer, TokenizerRegistry } from "./tokenizer-registry";

export interface KeySpec {
  readonly blockSize: number;
  /** The chain root (8 bytes) of the model's key namespace. */
  readonly root: Uint8Array;
  /** Return the rendered chat text too (explain, debugging). */
  readonly withText: boolean;
  /** Milliseconds this request may still spend; work stops once they run out. */
  readonly budgetMs: number;
}

/** When each stage ran, in epoch milliseconds (performance.timeOrigin + now): comparable across threads. */
export interface StageTimes {
  readonly template: readonly [number, number] | null;
  readonly tokenize: readonly [number, number];
  readonly hash: readonly [number, number];
}

export interface PromptKeys {
  /** Prompt length in tokens (estimated when not `complete`). */
  readonly tokens: number;
  /** Keys of the prompt's full blocks, KEY_BYTES each, in chain order (of its head when not `complete`). */
  readonly keys: BlockKeyBytes;
  /**
   * False when the keys cover only a head of the prompt that no worker held all of (HeadProbe):
   * no match can reach past it, and `tokens` is estimated from the head's tokens per character.
   */
  readonly complete: boolean;
  /** The rendered chat text, when asked for and the prompt is a chat. */
  readonly text: string | null;
  readonly stages: StageTimes;
  /**
   * When not `complete`: the keys of the whole prompt once they are keyed after the answer (the
   * chosen worker computes all of it: RequestRouter records them as its speculative route), null
   * when that keying was dropped or failed. Not sent across threads (the pool makes its own).
   */
  readonly rest?: Promise<BlockKeyBytes | null>;
}

/** What a thread read from a body it parsed: the model the client named and the stream flag. */
export interface ParsedRequest {
  readonly model: string;
  readonly stream: boolean;
}

/** The answer to a body parsed in a thread (keysOfBody). */
export interface BodyKeys {
  readonly result: Outcome<PromptKeys>;
  /** Null when the body did not parse. */
  readonly parsed: ParsedRequest | null;
}

/** A prompt's head, keyed: its model (canonical name), the keys of its full blocks so far. */
export interface KeyedHead {
  readonly model: string;
  readonly keys: BlockKeyBytes;
}

/**
 * Asked after each head of a prompt with much new text: true when some worker holds every block
 * keyed so far (keying goes on), false when none does (the head's keys are the answer).
 */
export interface HeadProbe {
  (head: KeyedHead): Promise<boolean>;
  /**
   * Told, without waiting for an answer, the keys of a cached prefix of at least LOOKAHEAD_BLOCKS
   * blocks before the text after it is encoded: the caller may look them up meanwhile, and after
   * the answer only the blocks past them.
   */
  readonly prefix?: (head: KeyedHead) => void;
}

/** Where a request's keys come from: a tokenizer pool (worker threads) or a PromptKeyer in process. */
export interface PromptKeySource {
  keys(model: string, prompt: Prompt, spec: KeySpec, probe?: HeadProbe): Promise<Outcome<PromptKeys>>;
  /** Bodies of at least this many bytes may go to keysOfBody() unparsed (a pool only). */
  readonly parsesBodiesOver?: number;
  /** Parses the body off the event loop, resolves the model it names and keys its prompt. */
  keysOfBody?(path: string, body: Buffer, spec: Omit<KeySpec, "root">, probe?: HeadProbe): Promise<BodyKeys>;
}

/**
 * A cached prefix this long is announced to the probe (HeadProbe.prefix) before the rest is
 * encoded: its lookup (~0.1 µs a block on the memory index) then overlaps the encoder's round trip
 * (~0.1-0.2 ms). Below it, the extra message would cost about what the overlap saves.
 */
const LOOKAHEAD_BLOCKS = 512;

/** Blocks hashed between two turns of the thread's event loop (~1 ms). */
const HASH_SLICE_BLOCKS = 256;

/** A point is recorded for reuse after at least this many tokens since the last one (and at the end). */
const POINT_EVERY_TOKENS = 64;

/**
 * New text of the first head, in characters (~500 tokens: many blocks, encoded in well under a
 * millisecond); each next head is HEAD_GROWTH times longer, so a prompt is probed O(log) times.
 */
const HEAD_CHARS = 2048;
const HEAD_GROWTH = 4;
/** A head is keyed first only when at least this much new text would follow it (less costs less than a probe saves). */
const PROBE_REST_CHARS = 4096;
/** Beginnings of keyed texts a thread remembers (prompt-pieces.ts SeenBeginnings; ~100 B each). */
const SEEN_BEGINNINGS = 16_384;
/** Prompts whose rest one thread keys in the background at once; more wait in line. */
const MAX_BACKGROUND = 2;
/**
 * Prompts waiting in line for that; more are dropped. The rest is the chosen worker's route (a
 * follow-up finds its history there), so a burst of new documents waits rather than loses it; only
 * a sustained overload sheds it.
 */
const MAX_WAITING = 16;
/** Characters of rest text the line may hold at once (~8 MB as UTF-16): a burst of huge prompts is shed sooner. */
const MAX_WAITING_CHARS = 4_000_000;

const epochNow = () => performance.timeOrigin + performance.now();

export class PromptKeyer implements PromptKeySource {
  private readonly chains: ChainStateCache;
  private readonly renderCost = new RenderCost();

  constructor(
    private readonly tokenizers: Pick<TokenizerRegistry, "get">,
    chainCacheBytes: number,
  ) {
    this.chains = new ChainStateCache(chainCacheBytes);
  }

  private reusedPieces = 0;
  private readonly beginnings = new SeenBeginnings(HEAD_CHARS, SEEN_BEGINNINGS);
  private background = 0;
  private readonly waiting: (() => void)[] = [];
  private waitingChars = 0;
  private backgroundDropped = 0;

  chainStats() {
    return this.chains.stats();
  }

  /**
   * The segment cache's counters with the chain-state cache folded in: a text piece before a reused
   * point counts as a hit (its ids and keys were both reused), and the bytes are both caches'.
   */
  stats(segments: SegmentCacheStats): SegmentCacheStats {
    return {
      segmentHits: segments.segmentHits + this.reusedPieces,
      segmentMisses: segments.segmentMisses,
      cachedBytes: segments.cachedBytes + this.chains.stats().bytes,
      backgroundDropped: this.backgroundDropped,
    };
  }

  async keys(model: string, prompt: Prompt, spec: KeySpec, probe?: HeadProbe): Promise<Outcome<PromptKeys>> {
    const deadline = performance.now() + spec.budgetMs;
    const expired = () => performance.now() > deadline;
    const tokenizer = this.tokenizers.get(model);
    if (!tokenizer) return fail("unknown-model", `no tokenizer loaded for ${model}`);
    const started = epochNow();
    if (prompt.kind === "completion-ids") {
      const ids = tokenizer.checkIds(prompt.ids);
      if (!ids.ok) return ids;
      const checked = epochNow();
      const keys = blockKeyBytes(ids.value, spec.blockSize, spec.root);
      return ok({ tokens: ids.value.length, keys, complete: true, text: null, stages: { template: null, tokenize: [started, checked], hash: [checked, epochNow()] } });
    }
    if (prompt.kind === "chat") {
      // A render cannot be interrupted: one that would overrun the deadline is not started.
      const predicted = this.renderCost.predictMs(model, prompt.messages.length);
      if (predicted > spec.budgetMs) return timedOut(spec, `rendering ${prompt.messages.length} messages would take about ${Math.round(predicted)} ms`);
    }
    const rendered = prompt.kind === "chat" ? tokenizer.render(prompt) : ok(prompt.text);
    if (prompt.kind === "chat") this.renderCost.observe(model, prompt.messages.length, epochNow() - started);
    if (!rendered.ok) return rendered;
    const text = tokenizer.checkText(rendered.value);
    if (!text.ok) return text;
    const renderedAt = epochNow();
    if (expired()) return timedOut(spec);
    try {
      const headProbe = probe && Object.assign((keys: BlockKeyBytes) => probe({ model, keys }), { prefix: probe.prefix && ((keys: BlockKeyBytes) => probe.prefix!({ model, keys })) });
      const keyed = await this.keysOfText(tokenizer, text.value, prompt.addSpecialTokens, spec, expired, headProbe);
      const template = prompt.kind === "chat" ? ([started, renderedAt] as const) : null;
      return ok({ ...keyed, text: spec.withText && prompt.kind === "chat" ? text.value : null, stages: { ...keyed.stages, template } });
    } catch (err) {
      if (err instanceof DeadlineExceeded) return timedOut(spec);
      return fail("tokenize-error", err instanceof Error ? err.message : String(err));
    }
  }

  private async keysOfText(
    tokenizer: ModelTokenizer,
    text: string,
    addSpecialTokens: boolean,
    spec: KeySpec,
    expired: () => boolean,
    probe: (((keys: BlockKeyBytes) => Promise<boolean>) & { readonly prefix?: (keys: BlockKeyBytes) => void }) | undefined,
  ): Promise<Omit<PromptKeys, "text" | "stages"> & { stages: Omit<StageTimes, "template"> }> {
    const tokenizeStart = epochNow();
    const stream = tokenizer.encoder.pieceStream(text, addSpecialTokens);
    if (stream === null) {
      // Only whole-text encoding is exact for this tokenizer: nothing to reuse.
      const ids = await tokenizer.encoder.encodeWhole(text, addSpecialTokens);
      const tokenized = epochNow();
      const keys = blockKeyBytes(ids, spec.blockSize, spec.root);
      return { tokens: ids.length, keys, complete: true, stages: { tokenize: [tokenizeStart, tokenized], hash: [tokenized, epochNow()] } };
    }
    const cut = new PromptPieces(stream, spec.root, spec.blockSize, text.length);
    // A text whose beginning this thread never keyed has no cached point past it: read only that
    // far. Only a text longer than the beginning can have such a point.
    const seen = text.length > this.beginnings.chars && this.beginnings.check(text);
    if (probe !== undefined && !seen && text.length >= HEAD_CHARS + PROBE_REST_CHARS) cut.readTo(this.beginnings.chars);
    else cut.readAll();
    const { pieces, points } = cut;
    const found = this.chains.last(points);
    let from = found === null ? 0 : found.at + 1;
    for (let i = 0; i < from; i++) if (pieces[i].text !== null) this.reusedPieces++;
    let state = found?.state ?? null;
    let tokenizeEnd = tokenizeStart;
    // Heads first while much new text follows (see the file comment).
    for (let headChars = HEAD_CHARS; probe !== undefined && cut.charsFrom(from) >= headChars + PROBE_REST_CHARS; headChars *= HEAD_GROWTH) {
      const to = cut.headEnd(from, headChars);
      const ids = await tokenizer.encoder.idsOf(pieces.slice(from, to), expired);
      tokenizeEnd = epochNow();
      const headTokens = tokensIn(ids);
      const headText = cut.charsTo(to) - cut.charsTo(from);
      state = await this.extend(state, ids, points.slice(from, to), spec);
      from = to;
      if (await probe(state.keys)) continue;
      // No worker holds the whole head: nothing past it can match. The rest is keyed later.
      const estimated = state.tokens + Math.round((cut.charsFrom(from) * headTokens) / Math.max(1, headText));
      const rest = this.keyLater(tokenizer, cut, from, state, spec);
      return { tokens: estimated, keys: state.keys, complete: false, rest, stages: { tokenize: [tokenizeStart, tokenizeEnd], hash: [tokenizeEnd, epochNow()] } };
    }
    cut.readAll();
    // After heads the probe has looked up these keys already (its last head).
    if (probe?.prefix && state !== null && state === found?.state && state.keys.length >= LOOKAHEAD_BLOCKS * KEY_BYTES && from < pieces.length) probe.prefix(state.keys);
    const ids = await tokenizer.encoder.idsOf(pieces.slice(from), expired);
    const tokenized = epochNow();
    const keyed = await this.extend(state, ids, points.slice(from), spec);
    return { tokens: keyed.tokens, keys: keyed.keys, complete: true, stages: { tokenize: [tokenizeStart, tokenized], hash: [tokenized, epochNow()] } };
  }

  /**
   * Keys the rest of a prompt after its answer (warming this thread's caches for a follow-up): its
   * pieces are cut on the next turn of the thread's loop, their bulk batches encoded on the bulk
   * encoder process when there is one. MAX_BACKGROUND at once, MAX_WAITING (at most
   * MAX_WAITING_CHARS of text) in line, more dropped.
   * Resolves to the whole prompt's keys, null when dropped or failed.
   */
  private keyLater(tokenizer: ModelTokenizer, cut: PromptPieces, from: number, state: ChainState, spec: KeySpec): Promise<BlockKeyBytes | null> {
    let turn: Promise<void>;
    const chars = cut.charsFrom(from);
    if (this.background < MAX_BACKGROUND) {
      this.background++;
      turn = new Promise<void>((resolve) => setImmediate(resolve));
    } else if (this.waiting.length < MAX_WAITING && this.waitingChars + chars <= MAX_WAITING_CHARS) {
      this.waitingChars += chars;
      // Its slot is handed over when a running one ends.
      turn = new Promise<void>((resolve) => this.waiting.push(resolve)).then(() => void (this.waitingChars -= chars));
    } else {
      this.backgroundDropped++;
      return Promise.resolve(null);
    }
    return turn
      .then(() => {
        cut.readAll();
        return tokenizer.encoder.idsOf(cut.pieces.slice(from), () => false, true);
      })
      .then((ids) => this.extend(state, ids, cut.points.slice(from), spec))
      .then((whole) => whole.keys)
      .catch(() => null) // the pieces it could not encode stay uncached
      .finally(() => {
        const next = this.waiting.shift();
        if (next) next();
        else this.background--;
      });
  }

  /** Hashes `ids` (pieces after `state`) onto the chain, records the new points, returns the state at their end. */
  private async extend(state: ChainState | null, ids: readonly Uint32Array[], names: readonly string[], spec: KeySpec): Promise<ChainState> {
    const { blockSize } = spec;
    const tail = state?.tail ?? new Uint32Array(0);
    const before = state?.tokens ?? 0;
    const doneBlocks = state === null ? 0 : state.keys.length / KEY_BYTES;
    const added = tokensIn(ids);
    const tokens = before + added;
    const blocks = Math.floor(tokens / blockSize);
    // The tokens not yet hashed: the state's partial block, then the new pieces.
    const pending = new Uint32Array(tail.length + added);
    pending.set(tail, 0);
    let offset = tail.length;
    for (const part of ids) {
      pending.set(part, offset);
      offset += part.length;
    }
    const keys = new Uint8Array(blocks * KEY_BYTES);
    if (state !== null) keys.set(state.keys, 0);
    // In slices, so other jobs of this thread (a short request behind a cold 32k one) get a turn.
    for (let b = doneBlocks; b < blocks; b += HASH_SLICE_BLOCKS) {
      if (b > doneBlocks) await new Promise((resolve) => setImmediate(resolve));
      const parent = b === 0 ? spec.root : keys.subarray((b - 1) * KEY_BYTES, b * KEY_BYTES);
      hashBlocksInto(pending, (b - doneBlocks) * blockSize, Math.min(HASH_SLICE_BLOCKS, blocks - b), blockSize, parent, keys, b * KEY_BYTES);
    }

    const points: RunPoint[] = [];
    let seen = before;
    let recorded = before;
    ids.forEach((part, i) => {
      seen += part.length;
      if (seen - recorded < POINT_EVERY_TOKENS && i < ids.length - 1) return;
      recorded = seen;
      const full = Math.floor(seen / blockSize);
      const tailFrom = full * blockSize - (before - tail.length); // index in `pending`
      points.push({ key: names[i], tokens: seen, blocks: full, tail: pending.slice(tailFrom, tailFrom + (seen - full * blockSize)) });
    });
    this.chains.put(keys, points);
    const tailFrom = blocks * blockSize - (before - tail.length);
    return { tokens, keys, tail: pending.slice(tailFrom) };
  }
}

function tokensIn(ids: readonly Uint32Array[]): number {
  let n = 0;
  for (const part of ids) n += part.length;
  return n;
}

function timedOut(spec: KeySpec, what = "tokenizing took"): Outcome<never> {
  return fail("decision-timeout", `${what} over the ${Math.round(spec.budgetMs)} ms left for the decision`);
}
