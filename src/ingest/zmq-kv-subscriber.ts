/**
 * ZmqKvSubscriber: the zero-patch ingest path. Subscribes to one vLLM publisher's native KV event
 * stream (--kv-events-config '{"enable_kv_cache_events":true,"publisher":"zmq",
 * "endpoint":"tcp://*:5557","replay_endpoint":"tcp://*:5558"}'), translates vLLM's hashes to our
 * keys (HashTranslator) and applies each batch, in order, to the CacheIndex as one worker's ops.
 *
 * Wire (vllm/distributed/kv_events.py ZmqEventPublisher._publisher_thread): multipart
 * `[topic, seq.to_bytes(8, "big"), msgpack(KVEventBatch)]`, seq counting from 0 per publisher; with
 * data parallelism each rank has its own publisher on port + rank, so one subscriber per endpoint.
 *
 * Recovery (the router cannot reconstruct evicted state, so it clears rather than guess):
 * - first message / engine restart (seq below the last live seq): clear the worker and the
 *   translator; if a replay endpoint is set and seq > 0, replay from 0 to pick up what the
 *   publisher still buffers (buffer_steps, default 10,000 batches).
 * - gap (seq > last + 1): replay from last + 1. If the replay covers the gap, nothing is lost.
 *   Otherwise (no replay endpoint, buffer too short, timeout) clear the worker and rebuild from
 *   the events that follow — from the oldest contiguous replayed batch when there is one.
 *   Translations survive a gap: within one engine a vLLM hash always names the same tokens.
 * - publisher gone (the SUB socket's connection to it closed: vLLM stopped or crashed): clear the
 *   worker at once — its cache is gone or unverifiable, and vLLM's stream is silent while idle, so
 *   nothing else would tell — and treat the next message as a new stream (first, replay from 0).
 * - malformed payload or a failed apply(): clear the worker (with the next apply if it failed).
 * - an event we cannot translate (its parent block was stored before we joined, or the table cap
 *   dropped it) is skipped and reported; clearing would not bring the parent back.
 * Batches and disconnects are handled one at a time, in order, so a worker's ops reach apply() in order.
 *
 * Parameters: topic "" (vLLM's default; ZMQ prefix match), replayTimeoutMs 2000,
 * receiveHighWaterMark 10,000 messages, maxTableEntries 2,000,000, bind false (connect).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Subscriber } from "zeromq";
import type { IndexOp, WorkerId } from "../state/cache-index";
import { silentLogger, type Logger } from "../telemetry/logger";
import { HashTranslator, type TranslateIssue } from "./hash-translator";
import { decodeKvEventBatch } from "./vllm-kv-events";
import { requestReplay, type ReplayedBatch } from "./zmq-replay-client";
import { SequenceTracker } from "./zmq-sequence";

export interface ZmqKvSubscriberOptions {
  readonly workerId: WorkerId;
  /** vLLM's PUB endpoint, e.g. "tcp://10.0.0.1:5557". */
  readonly endpoint: string;
  /** vLLM's ROUTER replay endpoint, e.g. "tcp://10.0.0.1:5558"; without it a gap clears the worker. */
  readonly replayEndpoint?: string;
  readonly topic?: string;
  /** Canonical model name and key namespace: must match what the router keys requests with. */
  readonly model: string;
  readonly hashSeed: string;
  readonly blockSize: number;
  /** Applies one batch of ops for one worker (CacheIndex.apply). */
  readonly apply: (worker: WorkerId, ops: readonly IndexOp[]) => Promise<void>;
  readonly onGap?: (gap: GapReport) => void;
  readonly onBatch?: (batch: BatchReport) => void;
  readonly logger?: Logger;
  readonly replayTimeoutMs?: number;
  readonly receiveHighWaterMark?: number;
  readonly maxTableEntries?: number;
  /** Bind instead of connect, for a vLLM whose endpoint has no wildcard (it then connects). */
  readonly bind?: boolean;
}

export type GapKind = "sequence" | "restart" | "disconnect" | "malformed" | "apply-failed" | "untranslatable";

export interface GapReport {
  readonly worker: WorkerId;
  readonly kind: GapKind;
  /** Missing seq range (sequence gaps), inclusive. */
  readonly from?: number;
  readonly to?: number;
  /** replay: nothing lost; cleared: the worker's entries were dropped; none: only reported. */
  readonly recovery: "replay" | "cleared" | "none";
  readonly detail?: string;
}

export interface BatchReport {
  readonly worker: WorkerId;
  readonly seq: number;
  readonly replayed: boolean;
  readonly events: number;
  readonly ops: readonly IndexOp[];
  readonly issues: readonly TranslateIssue[];
}

export interface ZmqKvSubscriberStats {
  readonly batches: number;
  readonly events: number;
  readonly gaps: number;
  readonly replays: number;
  readonly replayFailures: number;
  readonly duplicates: number;
  readonly restarts: number;
  readonly disconnects: number;
  readonly clears: number;
  readonly untranslatable: number;
  readonly rejected: number;
  readonly ignored: number;
  readonly malformed: number;
  readonly unknownEvents: number;
  readonly unknownRemovals: number;
  readonly applyErrors: number;
  readonly lastSeq: number | null;
  readonly tableEntries: number;
}

type Counters = { -readonly [K in Exclude<keyof ZmqKvSubscriberStats, "lastSeq" | "tableEntries">]: number };

export class ZmqKvSubscriber {
  private readonly opts: ZmqKvSubscriberOptions;
  private readonly log: Logger;
  private readonly translator: HashTranslator;
  private readonly seq = new SequenceTracker();
  private readonly abort = new AbortController();
  private readonly counters: Counters = {
    batches: 0, events: 0, gaps: 0, replays: 0, replayFailures: 0, duplicates: 0, restarts: 0, disconnects: 0, clears: 0,
    untranslatable: 0, rejected: 0, ignored: 0, malformed: 0, unknownEvents: 0, unknownRemovals: 0, applyErrors: 0,
  };
  private sub: Subscriber | undefined;
  private loop: Promise<void> | undefined;
  private pendingClear = false;
  private warnedRejected = false;
  /** Serializes message handling with disconnect handling. */
  private tail: Promise<void> = Promise.resolve();

  constructor(options: ZmqKvSubscriberOptions) {
    this.opts = { ...options };
    this.log = (options.logger ?? silentLogger).child({ component: "zmq-kv-subscriber", worker: options.workerId });
    this.translator = new HashTranslator({ hashSeed: options.hashSeed, model: options.model, blockSize: options.blockSize, maxEntries: options.maxTableEntries });
  }

  /** Opens the SUB socket and starts the receive loop. Messages published before the connection is up are lost (ZMQ slow joiner); the first one received starts the stream. */
  start(): void {
    if (this.sub) throw new Error("ZmqKvSubscriber already started");
    const sub = new Subscriber({ linger: 0, receiveHighWaterMark: this.opts.receiveHighWaterMark ?? 10_000 });
    if (this.opts.bind) void sub.bind(this.opts.endpoint).catch((err: Error) => this.log.error({ err }, "bind failed"));
    else sub.connect(this.opts.endpoint);
    sub.subscribe(this.opts.topic ?? "");
    sub.events.on("disconnect", () => void this.serial(() => this.onDisconnect()));
    this.sub = sub;
    this.loop = this.run(sub);
    this.log.info({ endpoint: this.opts.endpoint, replay: this.opts.replayEndpoint ?? null }, "subscribed to vLLM KV events");
  }

  /** Closes the sockets (an in-flight replay is aborted) and waits for the batch in progress. */
  async stop(): Promise<void> {
    if (!this.sub || this.abort.signal.aborted) return;
    this.abort.abort();
    this.sub.close();
    await this.loop;
    await this.tail;
  }

  stats(): ZmqKvSubscriberStats {
    return { ...this.counters, lastSeq: this.seq.applied(), tableEntries: this.translator.size() };
  }

  private async run(sub: Subscriber): Promise<void> {
    while (!this.abort.signal.aborted) {
      let frames: Buffer[];
      try {
        frames = await sub.receive();
      } catch (err) {
        if (this.abort.signal.aborted || sub.closed) return;
        this.log.error({ err }, "receive failed");
        await sleep(100); // never spin on a persistent socket error
        continue;
      }
      await this.serial(() => this.onMessage(frames));
    }
  }

  /** Runs `fn` after everything queued before it; an unexpected error clears the worker. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.tail.then(async () => {
      try {
        await fn();
      } catch (err) {
        // Expected failures are values; this is a bug. Keep the stream alive, but distrust state.
        this.log.error({ err }, "unexpected error handling the KV event stream");
        await this.clearWorker();
      }
    });
    this.tail = run;
    return run;
  }

  private async onDisconnect(): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.counters.disconnects++;
    this.seq.reset();
    this.log.warn("lost the connection to the vLLM publisher: clearing the worker");
    this.report({ kind: "disconnect", recovery: "cleared" });
    await this.clearWorker();
  }

  private async onMessage(frames: Buffer[]): Promise<void> {
    if (frames.length !== 3 || frames[1].length !== 8) {
      // No trustworthy seq: drop it; the next message's seq reveals the hole as a gap.
      this.counters.malformed++;
      this.log.warn({ frames: frames.length }, "malformed KV event message");
      return;
    }
    const seq = Number(frames[1].readBigUInt64BE(0));
    const payload = frames[2];
    const verdict = this.seq.observeLive(seq);
    switch (verdict.kind) {
      case "next":
        return this.applyBatch(seq, payload, false);
      case "duplicate":
        this.counters.duplicates++;
        return;
      case "first":
        await this.resync(seq);
        break;
      case "restart":
        this.counters.restarts++;
        this.log.warn({ seq, previous: verdict.previous }, "publisher restarted: clearing the worker");
        this.report({ kind: "restart", recovery: "cleared", detail: `seq ${seq} after ${verdict.previous}` });
        await this.resync(seq);
        break;
      case "gap":
        await this.recoverGap(verdict.from, verdict.to, seq);
        break;
    }
    const applied = this.seq.applied();
    if (applied === null || applied < seq) await this.applyBatch(seq, payload, false);
    else this.counters.duplicates++; // replay already brought it
  }

  /** A new stream: drop what we knew, then pick up the publisher's buffered history if we can. */
  private async resync(seq: number): Promise<void> {
    this.translator.reset();
    this.seq.resetApplied();
    await this.clearWorker();
    if (seq > 0 && this.opts.replayEndpoint) await this.catchUp(0, seq, true);
  }

  private async recoverGap(from: number, to: number, seq: number): Promise<void> {
    this.counters.gaps++;
    let exact = false;
    if (this.opts.replayEndpoint) exact = await this.catchUp(from, seq, false);
    else await this.clearWorker();
    this.log.warn({ from, to, recovered: exact }, "sequence gap in KV events");
    this.report({ kind: "sequence", from, to, recovery: exact ? "replay" : "cleared" });
  }

  /**
   * Replays from `from` and applies the contiguous run of buffered batches that reaches the live
   * seq. True when that run starts at `from` (nothing lost); otherwise the worker is cleared first
   * (unless `cleared` says it already was) and the run, possibly empty, rebuilds it.
   */
  private async catchUp(from: number, liveSeq: number, cleared: boolean): Promise<boolean> {
    this.counters.replays++;
    const reply = await requestReplay(this.opts.replayEndpoint!, from, { timeoutMs: this.opts.replayTimeoutMs, signal: this.abort.signal });
    if (this.abort.signal.aborted) return false; // stopping: leave the index alone
    if (!reply.ok) this.log.warn({ from, error: reply.error }, "replay failed");
    const run = reply.ok ? runReaching(reply.batches, from, liveSeq) : [];
    const exact = run.length > 0 && run[0].seq === from;
    if (!exact) {
      this.counters.replayFailures++;
      if (!cleared) await this.clearWorker();
    }
    for (const batch of run) {
      if (this.abort.signal.aborted) break;
      await this.applyBatch(batch.seq, batch.payload, true);
    }
    return exact;
  }

  private async applyBatch(seq: number, payload: Uint8Array, replayed: boolean): Promise<void> {
    const decoded = decodeKvEventBatch(payload);
    if (!decoded.ok) {
      this.counters.malformed++;
      this.log.warn({ seq, error: decoded.error }, "undecodable KV event batch: clearing the worker");
      this.report({ kind: "malformed", from: seq, to: seq, recovery: "cleared", detail: `${decoded.error.code}: ${decoded.error.detail}` });
      await this.clearWorker();
      return this.seq.markApplied(seq);
    }
    const { batch } = decoded;
    this.counters.batches++;
    this.counters.events += batch.events.length;
    this.counters.unknownEvents += batch.unknownEvents;
    const result = this.translator.translate(batch);
    this.counters.unknownRemovals += result.unknownRemovals;
    this.countIssues(seq, result.issues);
    await this.applyOps(result.ops);
    this.seq.markApplied(seq); // after apply(): stats().lastSeq promises the index has it
    this.opts.onBatch?.({ worker: this.opts.workerId, seq, replayed, events: batch.events.length, ops: result.ops, issues: result.issues });
  }

  private countIssues(seq: number, issues: readonly TranslateIssue[]): void {
    let untranslatable: TranslateIssue | undefined;
    for (const issue of issues) {
      this.counters[issue.kind]++;
      if (issue.kind === "untranslatable") untranslatable ??= issue;
      if (issue.kind === "rejected" && !this.warnedRejected) {
        this.warnedRejected = true; // once: every later event would say the same
        this.log.warn({ seq, reason: issue.reason }, "rejecting KV events: block size mismatch");
      }
    }
    if (untranslatable) this.report({ kind: "untranslatable", from: seq, to: seq, recovery: "none", detail: untranslatable.reason });
  }

  private async clearWorker(): Promise<void> {
    this.pendingClear = true;
    await this.applyOps([]);
  }

  /** Applies ops, led by a clear when one is owed; a failed apply owes a clear. */
  private async applyOps(ops: readonly IndexOp[]): Promise<void> {
    const clear = this.pendingClear;
    if (!clear && ops.length === 0) return;
    try {
      await this.opts.apply(this.opts.workerId, clear ? [{ op: "clear" }, ...ops] : ops);
      if (clear) this.counters.clears++;
      this.pendingClear = false;
    } catch (err) {
      this.counters.applyErrors++;
      this.pendingClear = true;
      this.log.error({ err }, "applying KV events to the index failed: the worker will be cleared");
      this.report({ kind: "apply-failed", recovery: "cleared", detail: (err as Error).message });
    }
  }

  private report(gap: Omit<GapReport, "worker">): void {
    this.opts.onGap?.({ worker: this.opts.workerId, ...gap });
  }
}

/** The longest contiguous tail of `batches` (seq ≥ from) that connects to `liveSeq`, or []. */
export function runReaching(batches: readonly ReplayedBatch[], from: number, liveSeq: number): ReplayedBatch[] {
  const usable = batches.filter((b) => b.seq >= from);
  let start = usable.length - 1;
  if (start < 0) return [];
  while (start > 0 && usable[start - 1].seq === usable[start].seq - 1) start--;
  const run = usable.slice(start);
  return run[0].seq <= liveSeq && run[run.length - 1].seq >= liveSeq - 1 ? run : [];
}
