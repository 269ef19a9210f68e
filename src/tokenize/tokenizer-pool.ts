/**
 * Worker threads that render, tokenize and hash prompts (tokenize-worker.ts → prompt-keyer.ts), so
 * the event loop only parses the body and routes. Each thread loads every model's tokenizer and
 * keeps its own caches (segment ids and chain states), the configured budgets split between them.
 *
 * Which thread: prompts that start alike go to the same thread (a hash of the model and the first
 * 256 characters of the first message or text; for a body the thread parses, of the 256 bytes after
 * its first "content" key), where their shared prefix is cached — unless that thread has two more
 * jobs waiting than the least busy one, which then takes the job (and caches the prefix too). A
 * thread that dies fails its jobs (the requests fall back) and is replaced.
 *
 * Bodies of `bodyBytesOver` (16 KiB) or more are not parsed on the event loop at all: keysOfBody()
 * hands their bytes to a thread, which parses them and answers with the model they name. Parsing
 * on the event loop and then cloning the parsed prompt to a thread copies its text twice (the
 * clone costs about what the parse does); a body large enough for that to matter is parsed once,
 * where it is keyed (warm 1k/8k/32k mix at 16 in flight: +10 % throughput, −7 % CPU per request
 * against 1 MiB, five alternating pairs; docs/benchmark.md).
 *
 * Large prompts have a lane of their own (TokenizerPoolOptions.largeLane): bodies of
 * `bodyBytes` (64 KiB, ~16k tokens) or more go to its threads. A prompt's render, parse and
 * hashing cost grows with its size, cached or not; in a shared lane a 1k-token chat waited behind
 * the milliseconds of a 32k-token one (bench:decision's interference row, docs/benchmark.md). The
 * lane's threads may also run at a lower OS priority (`nice`; Linux keeps one per thread,
 * thread-priority.ts), so small jobs get a saturated CPU first — off by default: under overload
 * the large decisions, where routing saves the most prefill, would be the ones to time out.
 * Caches are per thread, so a conversation that grows past `bodyBytes` has its prefix encoded once
 * more, in the lane. The lane is work-conserving: a large job whose lane thread is two jobs deep
 * borrows an idle small-lane thread while another one stays idle (and small jobs keep off a
 * borrowed thread), so a workload of large prompts only still has every thread.
 *
 * Threads are unref'd while no job waits, so an idle pool never keeps the process alive. A job's
 * heads are answered through its HeadProbe ("head" replies, HeadVerdict). Background bulk batches
 * (the rest of a long new prompt decided on its head) go to the bulk encoder process at a lower OS
 * priority (bulk-encoder.ts, tokenizerCache.bulkNice); bulk batches encoded in the threads (a
 * decision's, or without the process) are bounded across all threads (bulk-gate.ts), so small
 * jobs never queue behind them.
 */
import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { extname, join } from "node:path";
import { Worker } from "node:worker_threads";
import { fail, type Outcome } from "../failure";
import type { BlockKeyBytes } from "../prefix/block-keys";
import type { Prompt } from "../request/prompt";
import { BulkEncoderProcess } from "./bulk-encoder";
import { BulkGate } from "./bulk-gate";
import { encoderParallelism, PARALLELISM_VARIABLE } from "./encoder-parallelism";
import type { ModelTokenizerConfig } from "./model-files";
import type { BodyLimits } from "../request/parse-openai-body";
import type { BodyKeys, HeadProbe, KeySpec, PromptKeys, PromptKeySource } from "./prompt-keyer";
import type { SegmentCacheStats } from "./segment-cache";
import type { CatalogEntry, HeadVerdict, WorkerHeapProbe, WorkerInit, WorkerJob, WorkerReply } from "./tokenize-worker-protocol";

export interface TokenizerPoolOptions {
  readonly models: readonly ModelTokenizerConfig[];
  /** Every name a request may give → canonical model and chain root (for bodies parsed in a thread). */
  readonly catalog: Readonly<Record<string, CatalogEntry>>;
  /** The limits request bodies are parsed with. */
  readonly limits: BodyLimits;
  readonly threads: number;
  /** Segment-cache budget of the whole pool (split between threads). */
  readonly segmentCacheBytes: number;
  /** Chain-state cache budget of the whole pool (split between threads). */
  readonly chainCacheBytes: number;
  /** Nice value of the bulk encoder process (bulk-encoder.ts); 0 or absent: none, background batches are encoded in the threads. */
  readonly bulkNice?: number;
  /** Bodies this large are parsed in a thread, not on the event loop (default 16 KiB; keysOfBody()). */
  readonly bodyBytesOver?: number;
  /** Threads of their own for bodies of `bodyBytes` or more, at OS nice value `nice` (see the file comment); absent or 0 threads: one lane. */
  readonly largeLane?: LargeLane;
}

export interface LargeLane {
  readonly threads: number;
  readonly bodyBytes: number;
  readonly nice: number;
}

/** A thread's lane, its OS priority, and the jobs it was given (tests). */
export interface PoolThreadInfo {
  readonly lane: "small" | "large";
  readonly tid: number | null;
  readonly nice: number | null;
  readonly jobs: number;
}

/** How many more waiting jobs the preferred thread may have than the least busy one. */
const SPILL_AFTER = 2;
const AFFINITY_CHARS = 256;

interface Pending {
  readonly resolve: (keyed: BodyKeys) => void;
  readonly probe?: HeadProbe;
  /** A large-lane job (it may run on a small-lane thread it borrowed). */
  readonly large: boolean;
}

class PoolThread {
  readonly pending = new Map<number, Pending>();
  readonly probes = new Map<number, (heapUsed: number) => void>();
  /** Head decisions whose rest ("rest" reply) the thread is still keying, by job id. */
  readonly rests = new Map<number, (keys: BlockKeyBytes | null) => void>();
  stats: SegmentCacheStats = { segmentHits: 0, segmentMisses: 0, cachedBytes: 0 };
  ready = false;
  tid: number | null = null;
  nice: number | null = null;
  jobs = 0;

  constructor(readonly worker: Worker) {}

  hold(): void {
    if (this.pending.size === 1) this.worker.ref();
  }

  release(): void {
    if (this.pending.size === 0) this.worker.unref();
  }
}

export class TokenizerPool implements PromptKeySource {
  private readonly threads: (PoolThread | null)[];
  private nextId = 1;
  private closed = false;
  /** Counts of threads that were replaced, so the pool's counters never go down. */
  private retired: ThreadCounters = { segmentHits: 0, segmentMisses: 0, backgroundDropped: 0, bodyBytesReused: 0 };

  private constructor(
    private readonly init: WorkerInit,
    /** Threads of the small lane; the large lane's follow them in `threads`. */
    private readonly smallThreads: number,
    private readonly large: LargeLane | null,
    readonly parsesBodiesOver: number,
    private readonly bulk: BulkEncoderProcess | null,
  ) {
    this.threads = new Array(smallThreads + (large?.threads ?? 0)).fill(null);
  }

  /** Starts the threads and waits until each has loaded the tokenizers; throws what loading threw. */
  static async start(options: TokenizerPoolOptions): Promise<TokenizerPool> {
    const size = Math.max(1, Math.floor(options.threads));
    // Before any encoder runs in this process (encoder-parallelism.ts); set once, never per call.
    const parallelism = encoderParallelism();
    process.env[PARALLELISM_VARIABLE] = parallelism.router;
    const large = options.largeLane && options.largeLane.threads >= 1 ? { ...options.largeLane, threads: Math.floor(options.largeLane.threads) } : null;
    const all = size + (large?.threads ?? 0);
    const bulk = (options.bulkNice ?? 0) > 0 ? BulkEncoderProcess.start(options.models, options.bulkNice!, { [PARALLELISM_VARIABLE]: parallelism.bulk }) : null;
    const init: WorkerInit = {
      models: options.models,
      catalog: options.catalog,
      limits: options.limits,
      segmentCacheBytes: Math.floor(options.segmentCacheBytes / all),
      chainCacheBytes: Math.floor(options.chainCacheBytes / all),
      bulkGate: BulkGate.share(bulkLimit()),
      bulkSocket: bulk?.socket ?? null,
      nice: 0,
    };
    const pool = new TokenizerPool(init, size, large, options.bodyBytesOver ?? 16 << 10, bulk);
    // libuv's pool threads start on its first work item and take the priority of the thread that
    // submits it: from here, not from a large-lane thread that lowered its own.
    await stat(__filename);
    try {
      await Promise.all(pool.threads.map((_, slot) => pool.spawn(slot)));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** The prompt travels as a structured clone. */
  async keys(model: string, prompt: Prompt, spec: KeySpec, probe?: HeadProbe): Promise<Outcome<PromptKeys>> {
    return (await this.run(affinity(model, prompt), "small", (id) => ({ id, model, prompt, spec, probes: probe !== undefined }), probe)).result;
  }

  /** A body's bytes (a copy, transferred) to a thread that parses them; its answer names the model. */
  keysOfBody(path: string, body: Buffer, spec: Omit<KeySpec, "root">, probe?: HeadProbe): Promise<BodyKeys> {
    const bytes = new Uint8Array(body);
    const lane = this.large !== null && bytes.length >= this.large.bodyBytes ? "large" : "small";
    return this.run(bodyAffinity(bytes), lane, (id) => ({ id, model: null, prompt: { path, body: bytes }, spec, probes: probe !== undefined }), probe, [bytes.buffer]);
  }

  private run(preference: number, lane: PoolThreadInfo["lane"], job: (id: number) => WorkerJob, probe: HeadProbe | undefined, transfer: ArrayBuffer[] = []): Promise<BodyKeys> {
    const thread = this.pick(preference, lane);
    if (thread === null) return Promise.resolve({ result: fail("tokenize-error", this.closed ? "the tokenizer pool is closed" : "no tokenizer thread is ready"), parsed: null });
    const id = this.nextId++;
    return new Promise((resolve) => {
      thread.pending.set(id, { resolve, probe, large: lane === "large" });
      thread.jobs++;
      thread.hold();
      thread.worker.postMessage(job(id), transfer);
    });
  }

  /** The segment caches of all threads together. */
  stats(): SegmentCacheStats {
    const total = { ...this.retired, cachedBytes: 0 };
    for (const t of this.threads) {
      if (!t) continue;
      addCounters(total, t.stats);
      total.cachedBytes += t.stats.cachedBytes;
    }
    return total;
  }

  /**
   * Each live thread's V8 heap in use, after a full collection when node runs with --expose-gc
   * (memory tests: the segment and chain caches live in these heaps, not the main thread's).
   */
  heapUsed(): Promise<number[]> {
    const ready = this.threads.filter(isReady);
    return Promise.all(
      ready.map(
        (t) =>
          new Promise<number>((resolve) => {
            const id = this.nextId++;
            t.probes.set(id, resolve);
            t.worker.postMessage({ probe: "heap", id } satisfies WorkerHeapProbe);
          }),
      ),
    );
  }

  get size(): number {
    return this.threads.length;
  }

  /** Head decisions whose rest a thread is still keying (benchmarks wait for a quiet pool). */
  get restsPending(): number {
    let n = 0;
    for (const t of this.threads) n += t?.rests.size ?? 0;
    return n;
  }

  /** Each live thread's lane, priority and job count. */
  threadInfo(): PoolThreadInfo[] {
    return this.threads.flatMap((t, slot) => (isReady(t) ? [{ lane: this.laneOf(slot), tid: t.tid, nice: t.nice, jobs: t.jobs }] : []));
  }

  private laneOf(slot: number): PoolThreadInfo["lane"] {
    return slot < this.smallThreads ? "small" : "large";
  }

  async close(): Promise<void> {
    this.closed = true;
    const running = this.threads.filter((t): t is PoolThread => t !== null);
    this.threads.fill(null);
    for (const t of running) this.failAll(t, "the tokenizer pool closed");
    await Promise.all(running.map((t) => t.worker.terminate()));
    this.bulk?.close();
  }

  /**
   * A thread of the lane (of the other when none of the lane's is ready): the preferred one unless
   * it is SPILL_AFTER jobs busier than the least busy. A large job whose lane thread is SPILL_AFTER
   * jobs deep may borrow an idle small-lane thread while another small-lane thread stays idle, and
   * small jobs avoid a thread that runs a borrowed one: with large prompts only, every thread
   * works, and a small job still finds one free.
   */
  private pick(preference: number, lane: PoolThreadInfo["lane"]): PoolThread | null {
    const small = this.threads.slice(0, this.smallThreads);
    const unborrowed = small.filter((t) => isReady(t) && !hasLargeJob(t));
    const slots = lane === "large" ? this.threads.slice(this.smallThreads) : unborrowed.length > 0 ? unborrowed : small;
    let ready = slots.filter(isReady);
    if (ready.length === 0) ready = this.threads.filter(isReady);
    if (ready.length === 0) return null;
    const preferred = slots[preference % slots.length];
    let least = ready[0];
    for (const t of ready) if (t.pending.size < least.pending.size) least = t;
    const chosen = preferred && preferred.ready && preferred.pending.size <= least.pending.size + SPILL_AFTER ? preferred : least;
    if (lane === "small" || chosen.pending.size < SPILL_AFTER) return chosen;
    const idle = small.filter(isReady).filter((t) => t.pending.size === 0);
    return idle.length >= 2 ? idle[preference % idle.length] : chosen;
  }

  private spawn(slot: number): Promise<void> {
    const workerData: WorkerInit = { ...this.init, nice: this.laneOf(slot) === "large" ? this.large!.nice : 0 };
    const worker = SOURCE ? new Worker(SOURCE_BOOT, { eval: true, workerData }) : new Worker(WORKER_ENTRY, { workerData });
    const thread = new PoolThread(worker);
    this.threads[slot] = thread;
    worker.unref();
    return new Promise<void>((resolve, reject) => {
      worker.on("message", (reply: WorkerReply) => {
        switch (reply.kind) {
          case "ready":
            thread.tid = reply.tid;
            thread.nice = reply.nice;
            thread.ready = true;
            resolve();
            return;
          case "failed":
            reject(new Error(reply.error));
            return;
          case "heap":
            thread.probes.get(reply.id)?.(reply.heapUsed);
            thread.probes.delete(reply.id);
            return;
          case "head": {
            const probe = thread.pending.get(reply.id)?.probe;
            // A probe that fails cannot tell: keying goes on, as without one.
            const verdict = probe ? probe(reply.head).catch(() => true) : Promise.resolve(true);
            void verdict.then((more) => worker.postMessage({ verdict: "head", id: reply.id, more } satisfies HeadVerdict));
            return;
          }
          case "prefix":
            thread.pending.get(reply.id)?.probe?.prefix?.(reply.head);
            return;
          case "done": {
            thread.stats = reply.stats;
            const job = thread.pending.get(reply.id);
            if (!job) return;
            thread.pending.delete(reply.id);
            thread.release();
            job.resolve({ result: this.withRest(thread, reply.id, reply.result), parsed: reply.parsed });
            return;
          }
          case "rest":
            thread.rests.get(reply.id)?.(reply.keys);
            thread.rests.delete(reply.id);
            return;
        }
      });
      worker.on("error", (err) => reject(err));
      worker.on("exit", (code) => {
        reject(new Error(`tokenizer thread exited with code ${code} while loading`));
        if (this.threads[slot] !== thread) return;
        this.threads[slot] = null;
        this.failAll(thread, `the tokenizer thread exited (code ${code})`);
        addCounters(this.retired, thread.stats);
        // A thread that ran and died is replaced; one that never loaded is a config error (start() threw).
        if (!this.closed && thread.ready) this.spawn(slot).catch(() => undefined);
      });
    });
  }

  /** Keys that cover only a head get the promise of the whole prompt's keys, which the thread sends after them. */
  private withRest(thread: PoolThread, id: number, result: Outcome<PromptKeys>): Outcome<PromptKeys> {
    if (!result.ok || result.value.complete) return result;
    const rest = new Promise<BlockKeyBytes | null>((resolve) => thread.rests.set(id, resolve));
    return { ok: true, value: { ...result.value, rest } };
  }

  private failAll(thread: PoolThread, detail: string): void {
    for (const job of thread.pending.values()) job.resolve({ result: fail("tokenize-error", detail), parsed: null });
    thread.pending.clear();
    for (const probe of thread.probes.values()) probe(0);
    thread.probes.clear();
    for (const rest of thread.rests.values()) rest(null);
    thread.rests.clear();
  }
}

const isReady = (t: PoolThread | null): t is PoolThread => t !== null && t.ready;

/** A thread's counters, which only go up (its cachedBytes is a level, not a counter). */
type ThreadCounters = { -readonly [K in Exclude<keyof SegmentCacheStats, "cachedBytes">]-?: number };

/** Adds a thread's counters into `into` (the pool's total, or what replaced threads had counted). */
function addCounters(into: ThreadCounters, from: SegmentCacheStats): void {
  into.segmentHits += from.segmentHits;
  into.segmentMisses += from.segmentMisses;
  into.backgroundDropped += from.backgroundDropped ?? 0;
  into.bodyBytesReused += from.bodyBytesReused ?? 0;
}

function hasLargeJob(thread: PoolThread): boolean {
  for (const job of thread.pending.values()) if (job.large) return true;
  return false;
}

/** Bulk encodes at once: one per core, leaving at least one of libuv's threads to small ones. */
function bulkLimit(): number {
  const uvThreads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(availableParallelism(), uvThreads - 1));
}

/** The worker entry beside this file: built .js, or from source (tests, tsx) the .ts through tsx's require hook. */
const SOURCE = extname(__filename) === ".ts";
const WORKER_ENTRY = join(__dirname, `tokenize-worker${SOURCE ? ".ts" : ".js"}`);
const SOURCE_BOOT = SOURCE ? `require(${JSON.stringify(require.resolve("tsx/cjs/api"))}).register(); require(${JSON.stringify(WORKER_ENTRY)});` : "";

const FNV_BASIS = 0x811c9dc5;
const fnvMix = (h: number, code: number) => Math.imul(h ^ code, 0x01000193);

/** FNV-1a over the model and the prompt's first characters (or ids). */
function affinity(model: string, prompt: Prompt): number {
  let h = FNV_BASIS;
  const mix = (code: number) => (h = fnvMix(h, code));
  for (let i = 0; i < model.length; i++) mix(model.charCodeAt(i));
  if (prompt.kind === "completion-ids") {
    for (let i = 0; i < Math.min(prompt.ids.length, AFFINITY_CHARS / 4); i++) mix(prompt.ids[i]);
  } else {
    const head = prompt.kind === "chat" ? (prompt.messages[0]?.content ?? "") : prompt.text;
    for (let i = 0; i < Math.min(head.length, AFFINITY_CHARS); i++) mix(head.charCodeAt(i));
  }
  return h >>> 0;
}

const CONTENT_KEY = Buffer.from('"content"');

/**
 * FNV-1a over the AFFINITY_CHARS bytes after a raw body's first "content" key (the first message's
 * text in the usual serialization), or over its first bytes: prompts that start alike still meet in
 * one thread. Bodies name the model elsewhere, so it is not mixed in.
 */
function bodyAffinity(body: Uint8Array): number {
  const at = Buffer.from(body.buffer, body.byteOffset, body.byteLength).indexOf(CONTENT_KEY);
  const from = at < 0 ? 0 : at + CONTENT_KEY.length;
  let h = FNV_BASIS;
  for (let i = from; i < Math.min(body.length, from + AFFINITY_CHARS); i++) h = fnvMix(h, body[i]);
  return h >>> 0;
}
