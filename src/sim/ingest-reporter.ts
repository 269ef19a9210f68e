/**
 * Pushes a simulated replica's KV events to the router's ingest API exactly as the vllm-patch
 * plugin does (vllm-patch/prefix_router_vllm/pusher.py; proto/prefix_router/ingest/v1/ingest.proto):
 *
 * - One epoch per reporter. Its first batch, seq 1, carries no events and opens the epoch; every
 *   further batch with events takes seq + 1. A batch is cut `flushMs` (100) after its first event,
 *   or at once when it holds `maxBatchEvents` (1000) events / `maxBatchKeys` (100,000) keys.
 * - A cut batch is retried with the same seq, backoff `backoffMs` (100) doubling to `backoffMaxMs`
 *   (5000) with jitter, while new events queue behind it (over 10 batches' worth: dropped, resync).
 * - Idle: a heartbeat (no events, seq = last seq) every `heartbeatMs` (2000).
 * - RESYNC_REQUIRED (or a rejected call, once accepted again): Resync with the engine's current key
 *   set in pages of `resyncPageKeys` (65,536) at seq = last seq; the snapshot supersedes everything
 *   queued, and batches go on at seq + 1. At most one resync a second.
 * - UNAUTHENTICATED / PERMISSION_DENIED / INVALID_ARGUMENT are configuration errors: retried every 30 s.
 * Bearer token in `authorization` metadata. The engine stays pure: the sim server drains its events
 * and offer()s them here; snapshot() reads its cached keys.
 */
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { kvIngestClient } from "../ingest/ingest-proto";
import { encodeKeys } from "../ingest/ingest-batch";
import type { BlockKey } from "../prefix/block-keys";
import type { EngineKvEvent } from "./replica-model";

export interface IngestReporterOptions {
  /** host:port of the router's ingest server. */
  readonly target: string;
  readonly workerId: string;
  /** Canonical model name in the router config. */
  readonly model: string;
  readonly blockSize: number;
  readonly token?: string;
  /** Default: derived from the wall clock and the worker id (a new engine start). */
  readonly epoch?: string;
  readonly flushMs?: number;
  readonly heartbeatMs?: number;
  readonly maxBatchEvents?: number;
  readonly maxBatchKeys?: number;
  readonly backoffMs?: number;
  readonly backoffMaxMs?: number;
  readonly rpcTimeoutMs?: number;
  readonly resyncPageKeys?: number;
  /** The replica's whole key set right now (engine.cachedKeys). */
  readonly snapshot: () => readonly BlockKey[];
  readonly random?: () => number;
  readonly onError?: (message: string) => void;
}

export interface IngestReporterStats {
  batches: number;
  events: number;
  heartbeats: number;
  duplicates: number;
  resyncRequired: number;
  resyncs: number;
  failures: number;
  lastError: string;
  appliedSeq: number;
}

const DEFAULTS = { flushMs: 100, heartbeatMs: 2000, maxBatchEvents: 1000, maxBatchKeys: 100_000, backoffMs: 100, backoffMaxMs: 5000, rpcTimeoutMs: 5000, resyncPageKeys: 65_536 };
const PENDING_BATCHES = 10;
const MIN_RESYNC_INTERVAL_MS = 1000;
const REJECTED_RETRY_MS = 30_000;
const REJECTIONS = new Set<number>([status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.INVALID_ARGUMENT]);

type Callback<T> = (err: ServiceError | null, value?: T) => void;
interface RawClient {
  Push(req: object, md: Metadata, opts: { deadline: number }, cb: Callback<{ status: string; applied_seq: string; message: string }>): void;
  Resync(md: Metadata, opts: { deadline: number }, cb: Callback<{ keys: string; applied_seq: string }>): { write(page: object): void; end(): void };
  close(): void;
}

interface Batch {
  readonly seq: number;
  readonly events: EngineKvEvent[];
}

const keyCount = (e: EngineKvEvent) => (e.type === "cleared" ? 0 : e.keys.length);

export class IngestReporter {
  readonly stats: IngestReporterStats = { batches: 0, events: 0, heartbeats: 0, duplicates: 0, resyncRequired: 0, resyncs: 0, failures: 0, lastError: "", appliedSeq: 0 };
  private readonly o: Required<Omit<IngestReporterOptions, "token" | "onError">> & Pick<IngestReporterOptions, "token" | "onError">;
  private readonly client: RawClient;
  private pending: EngineKvEvent[] = [];
  private pendingKeys = 0;
  private pendingSince: number | null = null;
  private lastSeq = 1;
  private inflight: Batch | null = { seq: 1, events: [] }; // the opening batch
  private needResync = false;
  private retryAt = 0;
  private failures = 0;
  private lastContact = Date.now();
  private lastResync = -MIN_RESYNC_INTERVAL_MS;
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | null = null;
  private stopped = false;

  constructor(options: IngestReporterOptions) {
    this.o = { ...DEFAULTS, epoch: `${Date.now().toString(36)}-${options.workerId}`, random: Math.random, ...options };
    const KvIngest = kvIngestClient();
    this.client = new KvIngest(this.o.target, credentials.createInsecure(), { "grpc.max_send_message_length": 64 * 1024 * 1024 }) as unknown as RawClient;
  }

  get epoch(): string {
    return this.o.epoch;
  }

  /** Opens the epoch; a replica that already holds keys starts with a resync instead. */
  start(): void {
    if (this.o.snapshot().length > 0) this.needResync = true;
    this.wake();
  }

  /** Queues events for the next batch (drained from the engine by the caller). */
  offer(events: readonly EngineKvEvent[]): void {
    if (this.stopped || events.length === 0) return;
    if (this.needResync) return; // the coming resync's snapshot includes their effect
    for (const e of events) {
      const last = this.pending[this.pending.length - 1];
      if (e.type === "removed" && last?.type === "removed") this.pending[this.pending.length - 1] = { type: "removed", keys: [...last.keys, ...e.keys] };
      else this.pending.push(e);
      this.pendingKeys += keyCount(e);
    }
    this.pendingSince ??= Date.now();
    if (this.pending.length > PENDING_BATCHES * this.o.maxBatchEvents || this.pendingKeys > PENDING_BATCHES * this.o.maxBatchKeys) this.scheduleResync();
    this.wake();
  }

  /** Resolves once nothing is queued or in flight (for tests and shutdown); false on timeout. */
  async flush(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.pendingSince = this.pending.length > 0 ? 0 : null;
    while (this.pending.length > 0 || this.inflight !== null || this.needResync) {
      if (Date.now() > deadline || this.stopped) return false;
      this.wake();
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.busy;
    this.client.close();
  }

  private wake(): void {
    if (this.stopped || this.busy) return;
    clearTimeout(this.timer);
    this.busy = this.pump().finally(() => {
      this.busy = null;
      this.arm();
    });
  }

  private arm(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.wake(), Math.max(0, this.nextDeadline() - Date.now()));
    this.timer.unref();
  }

  private nextDeadline(): number {
    const now = Date.now();
    if (this.retryAt > now) return this.retryAt;
    if (this.needResync) return Math.max(now, this.lastResync + MIN_RESYNC_INTERVAL_MS);
    if (this.inflight !== null || this.batchFull()) return now;
    const heartbeat = this.lastContact + this.o.heartbeatMs;
    return this.pendingSince === null ? heartbeat : Math.min(heartbeat, this.pendingSince + this.o.flushMs);
  }

  private async pump(): Promise<void> {
    while (!this.stopped && (await this.stepOnce(Date.now())));
  }

  /** Does one due thing (resync, batch, heartbeat); false when nothing is due. */
  private async stepOnce(now: number): Promise<boolean> {
    if (now < this.retryAt) return false;
    if (this.needResync) return now >= this.lastResync + MIN_RESYNC_INTERVAL_MS && this.resync(now);
    if (this.inflight === null && this.pendingSince !== null && (this.batchFull() || now - this.pendingSince >= this.o.flushMs)) this.inflight = this.cut();
    if (this.inflight !== null) return this.send(this.inflight, false);
    if (now - this.lastContact >= this.o.heartbeatMs) return this.send({ seq: this.lastSeq, events: [] }, true);
    return false;
  }

  private batchFull(): boolean {
    return this.pending.length >= this.o.maxBatchEvents || this.pendingKeys >= this.o.maxBatchKeys;
  }

  private cut(): Batch {
    let take = 0;
    let keys = 0;
    while (take < this.pending.length && take < this.o.maxBatchEvents) {
      const n = keyCount(this.pending[take]);
      if (take > 0 && keys + n > this.o.maxBatchKeys) break;
      take++;
      keys += n;
    }
    const events = this.pending.splice(0, take);
    this.pendingKeys -= keys;
    if (this.pending.length === 0) this.pendingSince = null; // a remainder keeps its age
    return { seq: ++this.lastSeq, events };
  }

  private async send(batch: Batch, heartbeat: boolean): Promise<boolean> {
    const req = {
      worker_id: this.o.workerId, model: this.o.model, lora: "", epoch: this.o.epoch, seq: String(batch.seq), block_size: this.o.blockSize,
      events: batch.events.map(wireEvent), sent_at_ms: String(Date.now()),
    };
    let reply: { status: string; applied_seq: string; message: string };
    try {
      reply = await new Promise((resolve, reject) => this.client.Push(req, this.metadata(), { deadline: Date.now() + this.o.rpcTimeoutMs }, (err, r) => (err ? reject(err) : resolve(r!))));
    } catch (err) {
      this.failed(err as ServiceError, "Push");
      return false;
    }
    this.succeeded();
    this.stats.appliedSeq = Number(reply.applied_seq);
    if (reply.status === "RESYNC_REQUIRED") {
      this.stats.resyncRequired++;
      this.scheduleResync();
      return true;
    }
    if (heartbeat) {
      this.stats.heartbeats++;
      return true;
    }
    this.inflight = null;
    if (reply.status === "APPLIED") {
      this.stats.batches++;
      this.stats.events += batch.events.length;
    } else {
      this.stats.duplicates++;
    }
    return true;
  }

  private async resync(now: number): Promise<boolean> {
    // The snapshot covers every event so far: drop what is queued, keep what arrives meanwhile.
    this.inflight = null;
    this.lastResync = now;
    this.needResync = false;
    this.pending = [];
    this.pendingKeys = 0;
    this.pendingSince = null;
    const keys = [...this.o.snapshot()];
    const size = this.o.resyncPageKeys;
    try {
      const reply = await new Promise<{ applied_seq: string }>((resolve, reject) => {
        const call = this.client.Resync(this.metadata(), { deadline: Date.now() + this.o.rpcTimeoutMs }, (err, r) => (err ? reject(err) : resolve(r!)));
        const pages = Math.max(1, Math.ceil(keys.length / size));
        for (let p = 0; p < pages; p++) {
          call.write({
            worker_id: this.o.workerId, model: this.o.model, epoch: this.o.epoch, seq: String(this.lastSeq), block_size: this.o.blockSize,
            keys: encodeKeys(keys.slice(p * size, (p + 1) * size)), last: p === pages - 1,
          });
        }
        call.end();
      });
      this.stats.appliedSeq = Number(reply.applied_seq);
    } catch (err) {
      this.needResync = true;
      this.failed(err as ServiceError, "Resync");
      return false;
    }
    this.succeeded();
    this.stats.resyncs++;
    return true;
  }

  private scheduleResync(): void {
    this.needResync = true;
    this.pending = [];
    this.pendingKeys = 0;
    this.pendingSince = null;
  }

  private failed(err: ServiceError, call: string): void {
    this.failures++;
    this.stats.failures++;
    this.stats.lastError = `${call}: ${err.message}`;
    let delay: number;
    if (REJECTIONS.has(err.code)) {
      delay = Math.max(this.o.backoffMaxMs, REJECTED_RETRY_MS);
      this.scheduleResync(); // once accepted, send the whole view
    } else {
      delay = Math.min(this.o.backoffMaxMs, this.o.backoffMs * 2 ** Math.min(this.failures - 1, 30)) * (0.5 + this.o.random() / 2);
    }
    if (this.failures === 1 || REJECTIONS.has(err.code)) this.o.onError?.(`${call} to ${this.o.target} failed: ${err.message}`);
    this.retryAt = Date.now() + delay;
  }

  private succeeded(): void {
    this.failures = 0;
    this.retryAt = 0;
    this.lastContact = Date.now();
  }

  private metadata(): Metadata {
    const md = new Metadata();
    if (this.o.token) md.set("authorization", `Bearer ${this.o.token}`);
    return md;
  }
}

function wireEvent(e: EngineKvEvent): object {
  switch (e.type) {
    case "stored":
      return { stored: { keys: encodeKeys(e.keys), parent: e.parent ? Buffer.from(e.parent, "hex") : Buffer.alloc(0) } };
    case "removed":
      return { removed: { keys: encodeKeys(e.keys) } };
    case "cleared":
      return { cleared: {} };
  }
}
