/**
 * Applies validated batches and resyncs to the CacheIndex, one worker at a time in arrival order
 * (a KeyedSerializer per worker id), and keeps the liveness picture: a worker silent past
 * livenessTimeoutMs is marked stale — not a candidate, entries purged, asked to resync.
 * Transport-free: the gRPC adapter (ingest-server.ts) and tests call it directly.
 */
import { KeyedSerializer } from "../common/keyed-serializer";
import type { BlockKey } from "../prefix/block-keys";
import type { CacheIndex, WorkerId } from "../state/cache-index";
import type { DomainBatch } from "./ingest-batch";
import { IngestCounters } from "./ingest-counters";
import type { WorkerRecord, WorkerStateStore } from "./worker-state-store";
import { sequenceBatch } from "./worker-sequencer";

export type PushStatus = "APPLIED" | "DUPLICATE" | "RESYNC_REQUIRED";

export interface PushOutcome {
  readonly status: PushStatus;
  readonly appliedSeq: number;
  readonly message: string;
}

export interface ResyncSnapshot {
  readonly worker: WorkerId;
  readonly epoch: string;
  readonly seq: number;
  readonly keys: readonly BlockKey[];
}

export interface IngestServiceDeps {
  readonly index: CacheIndex;
  readonly states: WorkerStateStore;
  readonly livenessTimeoutMs: number;
  readonly now?: () => number;
}

const blank = (epoch: string, now: number): WorkerRecord => ({ epoch, appliedSeq: 0, needsResync: false, lastSeenMs: now, stale: false, gaps: 0, resyncs: 0 });

export class IngestService {
  readonly counters = new IngestCounters();
  private readonly serializer = new KeyedSerializer();
  private readonly now: () => number;
  private stale = new Set<WorkerId>();

  constructor(private readonly deps: IngestServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  push(batch: DomainBatch): Promise<PushOutcome> {
    return this.serializer.run(batch.worker, async () => {
      const now = this.now();
      const previous = await this.deps.states.get(batch.worker);
      const { verdict, next } = sequenceBatch(previous, batch);
      let record: WorkerRecord = { ...(previous ?? blank(batch.epoch, now)), ...next, lastSeenMs: now, stale: false, source: "push" };
      if ((verdict.kind === "apply" || verdict.kind === "resync-required") && verdict.clearFirst) {
        await this.deps.index.clearWorker(batch.worker);
        this.counters.epochChanges++;
      }
      if (verdict.kind === "apply") {
        await this.deps.index.apply(batch.worker, batch.ops);
        this.counters.recordApplied(batch, now);
      } else if (verdict.kind === "duplicate") {
        this.counters.duplicates++;
      } else if (verdict.reason === "gap") {
        record = { ...record, gaps: record.gaps + 1 };
        this.counters.gaps++;
      }
      await this.deps.states.put(batch.worker, record);
      this.stale.delete(batch.worker);
      if (verdict.kind === "resync-required") {
        this.counters.resyncRequests++;
        return { status: "RESYNC_REQUIRED", appliedSeq: record.appliedSeq, message: `resync required: ${verdict.reason}` };
      }
      return { status: verdict.kind === "apply" ? "APPLIED" : "DUPLICATE", appliedSeq: record.appliedSeq, message: "" };
    });
  }

  /** Replaces the worker's entries with its full current set of keys; batches continue at seq + 1. */
  resync(snapshot: ResyncSnapshot): Promise<{ keys: number; appliedSeq: number }> {
    return this.serializer.run(snapshot.worker, async () => {
      const now = this.now();
      const previous = await this.deps.states.get(snapshot.worker);
      await this.deps.index.replaceWorker(snapshot.worker, snapshot.keys);
      const base = previous && previous.epoch === snapshot.epoch ? previous : blank(snapshot.epoch, now);
      await this.deps.states.put(snapshot.worker, {
        ...base,
        epoch: snapshot.epoch,
        appliedSeq: snapshot.seq,
        needsResync: false,
        stale: false,
        lastSeenMs: now,
        resyncs: base.resyncs + 1,
      });
      this.stale.delete(snapshot.worker);
      this.counters.resyncs++;
      this.counters.resyncKeys += snapshot.keys.length;
      return { keys: snapshot.keys.length, appliedSeq: snapshot.seq };
    });
  }

  /** Marks workers silent past the timeout stale, purges their entries; returns the newly stale. */
  async checkLiveness(): Promise<WorkerId[]> {
    const now = this.now();
    const newlyStale: WorkerId[] = [];
    const all = await this.deps.states.all();
    const stale = new Set<WorkerId>();
    for (const [worker, record] of all) {
      if (record.stale) {
        stale.add(worker);
        continue;
      }
      if (record.source === "zmq") continue; // vLLM's own stream has no heartbeat

      if (now - record.lastSeenMs <= this.deps.livenessTimeoutMs) continue;
      await this.serializer.run(worker, async () => {
        const current = await this.deps.states.get(worker);
        if (!current || current.stale || now - current.lastSeenMs <= this.deps.livenessTimeoutMs) return;
        await this.deps.index.clearWorker(worker);
        await this.deps.states.put(worker, { ...current, stale: true, needsResync: true });
        stale.add(worker);
        newlyStale.push(worker);
        this.counters.stalePurges++;
      });
    }
    this.stale = stale;
    return newlyStale;
  }

  /** Workers that stopped reporting (synchronous view for the routing hot path). */
  staleWorkers(): ReadonlySet<WorkerId> {
    return this.stale;
  }

  /** Records events that arrived over vLLM's native ZMQ stream (ordering is the subscriber's job). */
  touchZmq(worker: WorkerId, seq: number): Promise<void> {
    return this.serializer.run(worker, async () => {
      const now = this.now();
      const previous = await this.deps.states.get(worker);
      await this.deps.states.put(worker, { ...(previous ?? blank("zmq", now)), appliedSeq: seq, lastSeenMs: now, stale: false, needsResync: false, source: "zmq" });
      this.stale.delete(worker);
    });
  }

  /** Drops everything about a worker that left the config. */
  forget(worker: WorkerId): Promise<void> {
    return this.serializer.run(worker, async () => {
      await this.deps.index.clearWorker(worker);
      await this.deps.states.delete(worker);
      this.stale.delete(worker);
    });
  }
}
