/**
 * SimReplicaEngine: one vLLM V1 replica as a pure, deterministic state machine (replica-model.ts).
 *
 * Each step (vLLM's Scheduler.schedule): running requests first, in admission order — a decode is
 * 1 token, an unfinished prefill takes min(rest, budget) — then waiting requests FCFS while the
 * token budget (maxBatchedTokens), maxSeqs and the KV cache allow. Duration: step-cost.ts.
 * A step scheduled at t ends at t + duration; its effects (tokens, first tokens, finishes) carry
 * the end time, and the next step starts then. Blocks become cached when the step that fills them
 * is scheduled, as vLLM's allocate_slots caches them (no later step can read them earlier).
 *
 * Prefix hits: at admission, the longest cached leading run of the prompt's keys, capped at
 * ⌊(P−1)/blockSize⌋ blocks — vLLM always recomputes the last prompt token, so a fully cached prompt
 * still runs a prefill of at least 1 token (and reports at most P−1 rounded to blocks as cached).
 * KV length at the end is P + maxTokens − 1 (the last sampled token is never fed back).
 *
 * Memory and admission (no preemption, no deadlock): a request is admitted only if the free queue,
 * less what running requests still have reserved, covers every block it will ever need
 * (⌈(P + maxTokens − 1)/blockSize⌉ minus its hit). Blocks are still taken lazily, chunk by chunk and
 * as decodes fill blocks, so eviction happens as late as in vLLM; the reservation only makes
 * admission a little more careful than vLLM, which over-commits and preempts.
 */
import { blockKeys, keyBytes, type BlockKey } from "../prefix/block-keys";
import { PagedPrefixCache, type BlockId } from "./paged-prefix-cache";
import type { EngineKvEvent, ReplicaConfig, ReplicaEngine, ReplicaMetrics, RequestTiming, SimRequest } from "./replica-model";
import { stepDurationMs, type PrefillChunk } from "./step-cost";

interface Seq {
  readonly req: SimRequest;
  readonly arrivalMs: number;
  /** Prompt then generated ids (the sampled token at position P + k − 1 is output k). */
  readonly tokens: Uint32Array;
  readonly keys: BlockKey[];
  readonly blocks: BlockId[];
  /** Leading blocks of this request already cached (hit or filled). */
  cachedBlocks: number;
  /** Tokens whose KV is computed (or scheduled in the current step). */
  computed: number;
  cachedTokens: number;
  outputs: number;
  firstTokenMs: number;
  /** Blocks still to be taken (counted in the engine's reservation). */
  reserved: number;
  lastStepEndMs: number;
  lastStepTokens: number;
}

interface Work {
  readonly seq: Seq;
  readonly tokens: number;
  readonly decode: boolean;
}

/** Blocks a request needs over its life: its KV peaks at P + maxTokens − 1 tokens. */
export function blocksNeeded(blockSize: number, promptTokens: number, maxTokens: number): number {
  return Math.ceil(Math.max(promptTokens, promptTokens + maxTokens - 1) / blockSize);
}

/** Whether a request can ever run on a replica of this config (else submit() throws). */
export function fitsReplica(config: Pick<ReplicaConfig, "blockSize" | "totalBlocks">, promptTokens: number, maxTokens: number): boolean {
  return blocksNeeded(config.blockSize, promptTokens, maxTokens) <= config.totalBlocks;
}

export class SimReplicaEngine implements ReplicaEngine {
  private readonly cache: PagedPrefixCache;
  private readonly config: ReplicaConfig;
  private readonly waiting: { req: SimRequest; arrivalMs: number }[] = [];
  private readonly running: Seq[] = [];
  private readonly byId = new Map<string, Seq>();
  /** Ids waiting or running. */
  private readonly known = new Set<string>();
  private clock = 0;
  private reserved = 0;
  private completed: RequestTiming[] = [];
  private firstTokens: { id: string; atMs: number; cachedTokens: number }[] = [];
  private queryTokens = 0;
  private hitTokens = 0;
  private busyMs = 0;

  constructor(config: ReplicaConfig) {
    this.config = { ...config, cost: { ...config.cost } };
    for (const k of ["maxBatchedTokens", "maxSeqs"] as const) {
      if (!Number.isInteger(config[k]) || config[k] <= 0) throw new RangeError(`${k} must be a positive integer, got ${config[k]}`);
    }
    this.cache = new PagedPrefixCache(config.totalBlocks, config.blockSize);
  }

  submit(request: SimRequest, nowMs: number): void {
    const { blockSize, totalBlocks } = this.config;
    const p = request.prompt.length;
    if (p === 0) throw new RangeError(`request ${request.id}: empty prompt`);
    if (!Number.isInteger(request.maxTokens) || request.maxTokens < 1) throw new RangeError(`request ${request.id}: maxTokens must be ≥ 1`);
    if (request.promptKeys.length !== Math.floor(p / blockSize)) throw new RangeError(`request ${request.id}: ${request.promptKeys.length} keys for ${p} tokens`);
    if (!fitsReplica(this.config, p, request.maxTokens)) throw new RangeError(`request ${request.id}: needs more than ${totalBlocks} blocks`);
    if (this.known.has(request.id)) throw new Error(`request ${request.id} submitted twice`);
    this.known.add(request.id);
    // Keep waiting sorted by arrival; out-of-order submits are rare, so a linear insert is fine.
    let at = this.waiting.length;
    while (at > 0 && this.waiting[at - 1].arrivalMs > nowMs) at--;
    this.waiting.splice(at, 0, { req: request, arrivalMs: nowMs });
  }

  advanceTo(untilMs: number): void {
    for (let start = this.nextStepMs(); start !== undefined && start <= untilMs; start = this.nextStepMs()) {
      if (!this.step(start)) throw new Error(`engine stalled at ${start} ms with ${this.waiting.length} waiting`); // a bug: see admission
    }
  }

  nextStepMs(): number | undefined {
    if (this.running.length > 0) return this.clock;
    if (this.waiting.length > 0) return Math.max(this.clock, this.waiting[0].arrivalMs);
    return undefined;
  }

  holds(key: BlockKey): boolean {
    return this.cache.holds(key);
  }

  cachedPrefix(keys: readonly BlockKey[]): number {
    return this.cache.cachedPrefix(keys);
  }

  /** Every key cached right now (a reporter's resync snapshot). */
  cachedKeys(): BlockKey[] {
    return this.cache.cachedKeys();
  }

  /** vLLM's POST /reset_prefix_cache: drops every cached key; false while requests run. */
  resetPrefixCache(): boolean {
    return this.cache.reset();
  }

  /** Output tokens of a running request produced by steps that ended by `nowMs` (for streaming). */
  outputsBy(id: string, nowMs: number): number | undefined {
    const seq = this.byId.get(id);
    if (!seq) return undefined;
    return seq.lastStepEndMs > nowMs ? seq.outputs - seq.lastStepTokens : seq.outputs;
  }

  metrics(): ReplicaMetrics {
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      kvUsage: this.cache.usedBlocks() / this.cache.totalBlocks,
      prefixQueryTokens: this.queryTokens,
      prefixHitTokens: this.hitTokens,
      busyMs: this.busyMs,
    };
  }

  takeCompleted(): RequestTiming[] {
    const out = this.completed;
    this.completed = [];
    return out;
  }

  takeKvEvents(): EngineKvEvent[] {
    return this.cache.takeEvents();
  }

  takeFirstTokens(): { id: string; atMs: number; cachedTokens: number }[] {
    const out = this.firstTokens;
    this.firstTokens = [];
    return out;
  }

  /** Schedules and runs one step starting at `t`; false when nothing could be scheduled. */
  private step(t: number): boolean {
    const { maxBatchedTokens, maxSeqs } = this.config;
    let budget = maxBatchedTokens;
    const work: Work[] = [];
    const schedule = (seq: Seq) => {
      const prompt = seq.req.prompt.length;
      const decode = seq.computed >= prompt;
      const tokens = decode ? 1 : Math.min(prompt - seq.computed, budget);
      this.allocateSlots(seq, seq.computed + tokens);
      work.push({ seq, tokens, decode });
      budget -= tokens;
    };
    for (const seq of this.running) {
      if (budget === 0) break;
      schedule(seq);
    }
    while (budget > 0 && this.running.length < maxSeqs && this.waiting.length > 0 && this.waiting[0].arrivalMs <= t) {
      const seq = this.admit(this.waiting[0].req, this.waiting[0].arrivalMs);
      if (!seq) break; // FCFS: the head waits for blocks, nobody overtakes it
      this.waiting.shift();
      schedule(seq);
    }
    if (work.length === 0) return false;

    const chunks: PrefillChunk[] = [];
    let decodes = 0;
    let kv = 0;
    for (const w of work) {
      if (w.decode) {
        decodes++;
        kv += w.seq.computed + 1;
      } else {
        chunks.push({ context: w.seq.computed, tokens: w.tokens });
      }
    }
    const duration = stepDurationMs(this.config.cost, chunks, decodes, kv);
    const end = t + duration;
    this.busyMs += duration;
    this.clock = end;
    for (const w of work) this.finishStep(w, end);
    return true;
  }

  /** Prefix lookup, capacity check, pinning of the hit. Null when the cache cannot take it yet. */
  private admit(req: SimRequest, arrivalMs: number): Seq | null {
    const { blockSize } = this.config;
    const p = req.prompt.length;
    const hit = this.cache.cachedPrefix(req.promptKeys, Math.floor((p - 1) / blockSize));
    const hitKeys = req.promptKeys.slice(0, hit);
    const future = blocksNeeded(blockSize, p, req.maxTokens) - hit;
    if (this.cache.unpinnedAmong(hitKeys) + future > this.cache.freeBlocks() - this.reserved) return null;
    const tokens = new Uint32Array(p + req.maxTokens);
    tokens.set(req.prompt);
    const seq: Seq = {
      req, arrivalMs, tokens, keys: [...req.promptKeys], blocks: this.cache.touch(hitKeys), cachedBlocks: hit, computed: hit * blockSize,
      cachedTokens: hit * blockSize, outputs: 0, firstTokenMs: NaN, reserved: future, lastStepEndMs: NaN, lastStepTokens: 0,
    };
    this.reserved += future;
    this.queryTokens += p;
    this.hitTokens += seq.cachedTokens;
    this.running.push(seq);
    this.byId.set(req.id, seq);
    return seq;
  }

  /** Takes the blocks `seq` needs to hold `tokens` tokens and caches the blocks they fill. */
  private allocateSlots(seq: Seq, tokens: number): void {
    const { blockSize } = this.config;
    const missing = Math.ceil(tokens / blockSize) - seq.blocks.length;
    if (missing > 0) {
      const got = this.cache.allocate(missing);
      if (!got || missing > seq.reserved) throw new Error(`request ${seq.req.id}: blocks beyond its reservation`); // a bug
      seq.blocks.push(...got);
      seq.reserved -= missing;
      this.reserved -= missing;
    }
    const full = Math.floor(tokens / blockSize);
    if (full <= seq.cachedBlocks || (seq.keys.length < full && !this.extendKeys(seq, full))) return;
    const from = seq.cachedBlocks;
    this.cache.cacheRun(seq.blocks.slice(from, full), seq.keys.slice(from, full), from > 0 ? seq.keys[from - 1] : null, seq.tokens.subarray(from * blockSize, full * blockSize));
    seq.cachedBlocks = full;
  }

  /** Keys the request's blocks up to `full` (generated blocks); false without a chain to extend. */
  private extendKeys(seq: Seq, full: number): boolean {
    const { blockSize } = this.config;
    const have = seq.keys.length;
    const parent = have > 0 ? keyBytes(seq.keys[have - 1]) : seq.req.root;
    if (!parent) return false; // a sub-block prompt without a chain root: generated blocks stay uncached
    seq.keys.push(...blockKeys(seq.tokens.subarray(have * blockSize, full * blockSize), blockSize, parent));
    return true;
  }

  private finishStep(w: Work, end: number): void {
    const { seq } = w;
    const prompt = seq.req.prompt.length;
    seq.computed += w.tokens;
    seq.lastStepEndMs = end;
    seq.lastStepTokens = seq.computed >= prompt ? 1 : 0;
    if (seq.lastStepTokens === 0) return; // a prefill chunk that did not finish the prompt
    seq.tokens[prompt + seq.outputs] = outputToken(seq.req, seq.outputs);
    seq.outputs++;
    if (seq.outputs === 1) {
      seq.firstTokenMs = end;
      this.firstTokens.push({ id: seq.req.id, atMs: end, cachedTokens: seq.cachedTokens });
    }
    if (seq.outputs < seq.req.maxTokens) return;
    this.cache.release(seq.blocks);
    this.reserved -= seq.reserved;
    this.running.splice(this.running.indexOf(seq), 1);
    this.byId.delete(seq.req.id);
    this.known.delete(seq.req.id);
    this.completed.push({
      id: seq.req.id, arrivalMs: seq.arrivalMs, firstTokenMs: seq.firstTokenMs, finishMs: end,
      promptTokens: prompt, cachedTokens: seq.cachedTokens, outputTokens: seq.outputs,
    });
  }
}

/** The k-th generated id: the request's own, or a per-request pseudo-random sequence (FNV-1a of the id). */
function outputToken(req: SimRequest, k: number): number {
  const own = req.outputTokens;
  if (own && own.length > 0) return own[k % own.length];
  let h = 0x811c9dc5;
  for (let i = 0; i < req.id.length; i++) h = Math.imul(h ^ req.id.charCodeAt(i), 0x01000193) >>> 0;
  return (Math.imul(h ^ k, 0x9e3779b1) >>> 0) % 100_000;
}
