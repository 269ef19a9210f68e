/**
 * The router's own routes that a cache lookup may not see yet. A decision records its chain in the
 * index as speculative (RequestRouter.recordSpeculatively), but that write is asynchronous (Redis)
 * and a lookup started before it lands misses it — so a burst on a new prefix would scatter over
 * the workers. Instead of queueing decisions behind each other, each decision's chain stays here
 * and is merged into the answer of every lookup that started before the chain's index write
 * completed — synchronously, right before the policy runs — so concurrent decisions never wait for
 * one another and still see each other. A lookup that started after the write sees the index's own
 * state (including an eviction reported since). Entries are dropped once the last lookup that could
 * need them is over: the write's completion plus the lookup budget (routing.lookupTimeoutMs).
 *
 * Chains are prefix-closed (block i's key hashes block i−1's), so the run two chains share is found
 * by binary search on equality. Pure: the clock is an argument. Cost per decision: O(pending ×
 * log chain length), pending = decisions of the last write-latency + lookup-budget milliseconds.
 */
import type { BlockKey } from "../prefix/block-keys";
import type { WorkerId } from "../state/cache-index";

interface Pending {
  readonly worker: WorkerId;
  readonly keys: readonly BlockKey[];
  /** When the index write completed; Infinity until then. */
  settledAtMs: number;
  /** Infinity until the index write completes. */
  expiresAtMs: number;
}

export class SpeculationOverlay {
  private pending: Pending[] = [];

  /** Records a routed chain; call settle() with the handle when its index write completes (or fails). */
  add(worker: WorkerId, keys: readonly BlockKey[]): Pending {
    const entry: Pending = { worker, keys, settledAtMs: Infinity, expiresAtMs: Infinity };
    if (keys.length > 0) this.pending.push(entry);
    return entry;
  }

  /** The index write of `entry` is done at `nowMs`: lookups that start later see it. */
  settle(entry: Pending, nowMs: number, lookupBudgetMs: number): void {
    entry.settledAtMs = nowMs;
    entry.expiresAtMs = nowMs + lookupBudgetMs;
  }

  /**
   * `runs` — the answer of a lookup started at `lookupStartedAtMs` — with each worker's run raised
   * to what its routes whose index write the lookup could have missed cover of `keys`.
   */
  merge(keys: readonly BlockKey[], runs: ReadonlyMap<WorkerId, number>, nowMs: number, lookupStartedAtMs: number): ReadonlyMap<WorkerId, number> {
    this.pending = this.pending.filter((p) => p.expiresAtMs > nowMs);
    if (this.pending.length === 0 || keys.length === 0) return runs;
    let merged: Map<WorkerId, number> | null = null;
    for (const p of this.pending) {
      if (!runs.has(p.worker)) continue; // not a candidate of this request
      if (p.settledAtMs <= lookupStartedAtMs) continue; // the lookup saw the index after this write
      const shared = sharedRun(keys, p.keys);
      if (shared > (merged ?? runs).get(p.worker)!) {
        merged ??= new Map(runs);
        merged.set(p.worker, shared);
      }
    }
    return merged ?? runs;
  }

  get size(): number {
    return this.pending.length;
  }
}

/** Leading keys two chains share (equal at i ⇒ equal before i). */
export function sharedRun(a: readonly BlockKey[], b: readonly BlockKey[]): number {
  let lo = 0;
  let hi = Math.min(a.length, b.length);
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (a[mid - 1] === b[mid - 1]) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
