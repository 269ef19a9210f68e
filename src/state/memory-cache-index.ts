/**
 * Embedded in-memory CacheIndex, the default for a single router.
 *
 * Layout: one Map from block key to a small holder list (worker slot numbers plus, per holder,
 * 0 for confirmed or the expiry time of a speculative entry). Memory is bounded by `maxEntries`
 * distinct keys: the least recently stored keys go first (Map iteration order is insertion order,
 * and a store re-inserts its key). Measured cost per entry: see docs/cache-index.md.
 * Speculative entries expire lazily (on lookup) and in sweepExpired().
 *
 * Parameters: maxEntries (default 4,000,000), now (injected clock, default Date.now).
 */
import type { BlockKey } from "../prefix/block-keys";
import type { CacheIndex, IndexOp, IndexStats, WorkerId, WorkerIndexStats } from "./cache-index";

interface Holders {
  /** Worker slots holding this key. */
  slots: number[];
  /** Parallel to slots: 0 = confirmed, otherwise the speculative entry's expiry (ms). */
  expiry: number[];
}

export interface MemoryCacheIndexOptions {
  readonly maxEntries: number;
  readonly now?: () => number;
}

export class MemoryCacheIndex implements CacheIndex {
  private readonly entries = new Map<BlockKey, Holders>();
  private readonly slotOf = new Map<WorkerId, number>();
  private readonly workerOf: WorkerId[] = [];
  private readonly confirmedCount: number[] = [];
  private readonly speculativeCount: number[] = [];
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: MemoryCacheIndexOptions) {
    if (!(options.maxEntries > 0)) throw new RangeError(`maxEntries must be positive, got ${options.maxEntries}`);
    this.maxEntries = options.maxEntries;
    this.now = options.now ?? Date.now;
  }

  async add(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    this.store(worker, keys, 0);
  }

  async addSpeculative(worker: WorkerId, keys: readonly BlockKey[], ttlMs: number): Promise<void> {
    if (ttlMs > 0) this.store(worker, keys, this.now() + ttlMs);
  }

  async remove(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    this.removeNow(worker, keys);
  }

  private removeNow(worker: WorkerId, keys: readonly BlockKey[]): void {
    const slot = this.slotOf.get(worker);
    if (slot === undefined) return;
    for (const key of keys) {
      const holders = this.entries.get(key);
      if (holders) this.dropHolder(key, holders, holders.slots.indexOf(slot));
    }
  }

  async clearWorker(worker: WorkerId): Promise<void> {
    this.clearNow(worker);
  }

  // Single-threaded: a synchronous method body is atomic with respect to every other call.
  async apply(worker: WorkerId, ops: readonly IndexOp[]): Promise<void> {
    for (const op of ops) {
      if (op.op === "add") this.store(worker, op.keys, 0);
      else if (op.op === "remove") this.removeNow(worker, op.keys);
      else this.clearNow(worker);
    }
  }

  async replaceWorker(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    this.clearNow(worker);
    this.store(worker, keys, 0);
  }

  private clearNow(worker: WorkerId): void {
    const slot = this.slotOf.get(worker);
    if (slot === undefined) return;
    if (this.confirmedCount[slot] === 0 && this.speculativeCount[slot] === 0) return;
    for (const [key, holders] of this.entries) this.dropHolder(key, holders, holders.slots.indexOf(slot));
  }

  async lookup(keys: readonly BlockKey[], workers: readonly WorkerId[]): Promise<ReadonlyMap<WorkerId, number>> {
    return this.lookupNow(keys, workers);
  }

  /** Synchronous lookup, for callers in the same process that cannot afford a microtask. */
  lookupNow(keys: readonly BlockKey[], workers: readonly WorkerId[]): Map<WorkerId, number> {
    const runs = new Map<WorkerId, number>();
    let active: number[] = [];
    for (const w of workers) {
      runs.set(w, 0);
      const slot = this.slotOf.get(w);
      if (slot !== undefined) active.push(slot);
    }
    const now = this.now();
    for (let i = 0; i < keys.length && active.length > 0; i++) {
      const holders = this.entries.get(keys[i]);
      const still: number[] = [];
      if (holders) {
        for (const slot of active) {
          const at = holders.slots.indexOf(slot);
          if (at >= 0 && this.isLive(keys[i], holders, at, now)) still.push(slot);
        }
      }
      if (still.length === active.length) continue;
      for (const slot of active) if (!still.includes(slot)) runs.set(this.workerOf[slot], i);
      active = still;
    }
    for (const slot of active) runs.set(this.workerOf[slot], keys.length);
    return runs;
  }

  /** Removes every expired speculative entry; returns how many were removed. */
  sweepExpired(): number {
    const now = this.now();
    let removed = 0;
    for (const [key, holders] of this.entries) {
      for (let at = holders.slots.length - 1; at >= 0; at--) {
        const expiry = holders.expiry[at];
        if (expiry !== 0 && expiry <= now) {
          this.dropHolder(key, holders, at);
          removed++;
        }
      }
    }
    return removed;
  }

  async stats(): Promise<IndexStats> {
    const workers: Record<WorkerId, WorkerIndexStats> = {};
    this.workerOf.forEach((id, slot) => {
      workers[id] = { blocks: this.confirmedCount[slot], speculative: this.speculativeCount[slot] };
    });
    return { entries: this.entries.size, workers };
  }

  async close(): Promise<void> {
    this.entries.clear();
  }

  private slotFor(worker: WorkerId): number {
    let slot = this.slotOf.get(worker);
    if (slot === undefined) {
      slot = this.workerOf.length;
      this.slotOf.set(worker, slot);
      this.workerOf.push(worker);
      this.confirmedCount.push(0);
      this.speculativeCount.push(0);
    }
    return slot;
  }

  private store(worker: WorkerId, keys: readonly BlockKey[], expiry: number): void {
    if (keys.length === 0) return;
    const slot = this.slotFor(worker);
    for (const key of keys) {
      let holders = this.entries.get(key);
      if (holders) {
        this.entries.delete(key); // re-insert: most recently stored goes last
      } else {
        holders = { slots: [], expiry: [] };
      }
      this.entries.set(key, holders);
      const at = holders.slots.indexOf(slot);
      if (at < 0) {
        holders.slots.push(slot);
        holders.expiry.push(expiry);
        if (expiry === 0) this.confirmedCount[slot]++;
        else this.speculativeCount[slot]++;
      } else if (holders.expiry[at] !== 0) {
        if (expiry === 0) {
          this.speculativeCount[slot]--;
          this.confirmedCount[slot]++;
        }
        holders.expiry[at] = expiry === 0 ? 0 : Math.max(expiry, holders.expiry[at]);
      }
    }
    this.evictOverflow();
  }

  private isLive(key: BlockKey, holders: Holders, at: number, now: number): boolean {
    const expiry = holders.expiry[at];
    if (expiry === 0 || expiry > now) return true;
    this.dropHolder(key, holders, at);
    return false;
  }

  private dropHolder(key: BlockKey, holders: Holders, at: number): void {
    if (at < 0) return;
    const slot = holders.slots[at];
    if (holders.expiry[at] === 0) this.confirmedCount[slot]--;
    else this.speculativeCount[slot]--;
    const last = holders.slots.length - 1;
    holders.slots[at] = holders.slots[last];
    holders.expiry[at] = holders.expiry[last];
    holders.slots.pop();
    holders.expiry.pop();
    if (holders.slots.length === 0) this.entries.delete(key);
  }

  private evictOverflow(): void {
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.entries().next().value as [BlockKey, Holders];
      const [key, holders] = oldest;
      while (holders.slots.length > 0) this.dropHolder(key, holders, holders.slots.length - 1);
    }
  }
}
