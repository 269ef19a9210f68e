/**
 * CacheIndex: which workers hold which prefix blocks. One interface, one file per backend, one
 * contract suite (cache-index.contract.ts) that every backend passes. Backends hold no telemetry.
 *
 * Worked example — worker w1 stored blocks [a, b, c], worker w2 stored [a, b]:
 *   lookup([a, b, c, d], [w1, w2, w3])  →  { w1: 3, w2: 2, w3: 0 }
 * A worker's run stops at its first missing block: w2 holding [a, c] gives w2: 1.
 *
 * Concurrency: every method may be called concurrently; each call is applied atomically
 * (a lookup never sees half of an add). Calls for one worker are applied in call order.
 */
import type { BlockKey } from "../prefix/block-keys";

export type WorkerId = string;

export interface WorkerIndexStats {
  /** Confirmed blocks this worker holds. */
  readonly blocks: number;
  /** Speculative (unconfirmed, unexpired) blocks. */
  readonly speculative: number;
}

export interface IndexStats {
  /** Distinct block keys held by at least one worker. */
  readonly entries: number;
  readonly workers: Readonly<Record<WorkerId, WorkerIndexStats>>;
}

/** One change in a batch applied by apply(): the domain form of a KV event. */
export type IndexOp =
  /**
   * `parent`: the key of the block before keys[0] when the keys continue a stored chain (a vLLM
   * BlockStored event's parent block); the keys are then one chain in order. A bounded index uses
   * it to keep a chain's head from ageing before its tail.
   */
  | { readonly op: "add"; readonly keys: readonly BlockKey[]; readonly parent?: BlockKey }
  | { readonly op: "remove"; readonly keys: readonly BlockKey[] }
  | { readonly op: "clear" };

export interface CacheIndex {
  /**
   * Records that `worker` stored `keys` (a store event). Idempotent; confirms speculative entries.
   * Empty `keys` is a no-op. Order within `keys` does not matter.
   */
  add(worker: WorkerId, keys: readonly BlockKey[]): Promise<void>;

  /**
   * Records that `worker` will probably store `keys` (our own routing decision). The entries count
   * as held until `ttlMs` passes unless add() confirms them; never downgrades a confirmed entry.
   * Empty `keys` or ttlMs <= 0 is a no-op.
   */
  addSpeculative(worker: WorkerId, keys: readonly BlockKey[], ttlMs: number): Promise<void>;

  /** Records that `worker` evicted `keys`, confirmed or speculative. Unknown keys are ignored. */
  remove(worker: WorkerId, keys: readonly BlockKey[]): Promise<void>;

  /**
   * Drops every entry of `worker` (engine restart, AllBlocksCleared, worker removed). Lookups stop
   * seeing them at once; the entries are freed in slices before the promise resolves.
   */
  clearWorker(worker: WorkerId): Promise<void>;

  /**
   * Applies a batch of ops for one worker, in order, atomically: a concurrent lookup sees all of
   * the batch or none of it — up to SLICE_KEYS (128) keys on Redis, 16,384 in memory; a larger
   * batch is applied in order in slices of that size, so no script holds Redis long and no slice
   * holds the event loop long, and a lookup may see a prefix of it. A call that rejects may have applied part of the batch; every op is idempotent, so a retry
   * of the same batch converges. Empty `ops` is a no-op.
   */
  apply(worker: WorkerId, ops: readonly IndexOp[]): Promise<void>;

  /**
   * Resync: afterwards `worker` holds exactly `keys` (confirmed), nothing else — its speculative
   * entries are dropped too. Atomic for lookups at any size: a large resync is built aside in
   * slices that yield (memory: to the event loop; Redis: to other clients) and swapped in at once.
   * Empty `keys` leaves the worker with nothing.
   */
  replaceWorker(worker: WorkerId, keys: readonly BlockKey[]): Promise<void>;

  /**
   * For a chain of keys in prefix order, the number of leading keys each of `workers` holds.
   * Every worker in `workers` is in the result (0 when it holds no leading block); workers not
   * asked about are not. Empty `keys` gives 0 for everyone.
   * `parent`: the keys continue a chain whose block `parent` was just looked up (a decision that
   * looked up a prompt's cached prefix ahead, RequestRouter): a backend that evicts by recency
   * keeps the blocks reached older than it, so the chain's head still ages last.
   */
  lookup(keys: readonly BlockKey[], workers: readonly WorkerId[], parent?: BlockKey): Promise<ReadonlyMap<WorkerId, number>>;

  stats(): Promise<IndexStats>;

  /** Releases timers and connections. The index must not be used afterwards. */
  close(): Promise<void>;
}
