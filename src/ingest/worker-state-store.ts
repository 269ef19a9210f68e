/**
 * What the router knows of each reporting worker: its epoch and applied seq (for ordering), when
 * it was last heard from (for liveness), and counters. One interface; an in-memory store for a
 * single router (a Redis-backed one lets several routers share it).
 */
import type { WorkerId } from "../state/cache-index";
import type { WorkerSeqState } from "./worker-sequencer";

export interface WorkerRecord extends WorkerSeqState {
  readonly lastSeenMs: number;
  /** Silent past the liveness timeout: not a candidate, entries purged, must resync. */
  readonly stale: boolean;
  readonly gaps: number;
  readonly resyncs: number;
  /**
   * How the worker reports: "push" (vllm-patch, heartbeats while idle) or "zmq" (vLLM's native
   * stream, silent while idle — so silence there says nothing about liveness).
   */
  readonly source?: "push" | "zmq";
}

export interface WorkerStateStore {
  get(worker: WorkerId): Promise<WorkerRecord | undefined>;
  put(worker: WorkerId, record: WorkerRecord): Promise<void>;
  all(): Promise<ReadonlyMap<WorkerId, WorkerRecord>>;
  delete(worker: WorkerId): Promise<void>;
}

export class MemoryWorkerStateStore implements WorkerStateStore {
  private readonly records = new Map<WorkerId, WorkerRecord>();

  async get(worker: WorkerId): Promise<WorkerRecord | undefined> {
    return this.records.get(worker);
  }

  async put(worker: WorkerId, record: WorkerRecord): Promise<void> {
    this.records.set(worker, record);
  }

  async all(): Promise<ReadonlyMap<WorkerId, WorkerRecord>> {
    return new Map(this.records);
  }

  async delete(worker: WorkerId): Promise<void> {
    this.records.delete(worker);
  }
}
