/**
 * A bounded set of block keys with least-recently-used eviction. Used for the approximate router's
 * per-worker view and for the single-LRU bound. touchChain() inserts a chain tail first, so its head
 * is the most recent and the tail is evicted first — the order vLLM frees a finished request's
 * blocks in, which keeps prefixes intact as long as possible.
 *
 * Layout: key → last-use stamp, plus a queue of (key, stamp) uses in time order; eviction pops the
 * queue, skipping uses a later touch superseded. Amortised O(1) per touch and eviction (a Map used
 * as an ordered set and evicted from the front degrades badly in V8 under heavy churn).
 */
import type { BlockKey } from "../../prefix/block-keys";

export class LruSet {
  private readonly stamps = new Map<BlockKey, number>();
  private queueKeys: BlockKey[] = [];
  private queueStamps: number[] = [];
  private head = 0;
  private clock = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be ≥ 1, got ${capacity}`);
  }

  get size(): number {
    return this.stamps.size;
  }

  has(key: BlockKey): boolean {
    return this.stamps.has(key);
  }

  /** Leading keys of `chain` present, at most `max`. */
  leadingRun(chain: readonly BlockKey[], max = chain.length): number {
    const limit = Math.min(max, chain.length);
    let n = 0;
    while (n < limit && this.stamps.has(chain[n])) n++;
    return n;
  }

  /** Marks every key of `chain` as just used, head last (most recent); evicts over capacity. */
  touchChain(chain: readonly BlockKey[]): void {
    for (let i = chain.length - 1; i >= 0; i--) {
      const stamp = ++this.clock;
      this.stamps.set(chain[i], stamp);
      this.queueKeys.push(chain[i]);
      this.queueStamps.push(stamp);
    }
    while (this.stamps.size > this.capacity) {
      const key = this.queueKeys[this.head];
      if (this.stamps.get(key) === this.queueStamps[this.head]) this.stamps.delete(key);
      this.head++;
    }
    if (this.queueKeys.length > 4096 && this.queueKeys.length > 3 * this.stamps.size) this.compact();
  }

  /** Drops consumed and superseded uses, so the queue stays O(size). */
  private compact(): void {
    const keys: BlockKey[] = [];
    const stamps: number[] = [];
    for (let i = this.head; i < this.queueKeys.length; i++) {
      if (this.stamps.get(this.queueKeys[i]) !== this.queueStamps[i]) continue;
      keys.push(this.queueKeys[i]);
      stamps.push(this.queueStamps[i]);
    }
    this.queueKeys = keys;
    this.queueStamps = stamps;
    this.head = 0;
  }
}
