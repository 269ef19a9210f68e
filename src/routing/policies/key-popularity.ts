/**
 * How many of the last `window` requests carried each block key — the data producer behind
 * consistent hashing's "first non-shared block". Fed only with what a router sees (the keys of
 * requests it routed, in order), never with workload labels such as conversation ids.
 *
 * Keys are chained, so a request holding key i holds keys 0..i-1 too: popularity never rises along
 * a chain, and the first unpopular key is the point where a prompt stops being shared.
 * Only the first `maxDepth` keys of a request are counted (deeper keys read as 0).
 *
 * Parameters: window 1,000 requests; maxDepth 4,096 blocks (64k tokens at 16 per block).
 */
import type { BlockKey } from "../../prefix/block-keys";
import type { PopularityView } from "./routing-policy";

export interface KeyPopularityOptions {
  readonly window?: number;
  readonly maxDepth?: number;
}

export class KeyPopularity implements PopularityView {
  private readonly counts = new Map<BlockKey, number>();
  private readonly ring: (readonly BlockKey[])[] = [];
  private next = 0;
  readonly window: number;
  readonly maxDepth: number;

  constructor(options: KeyPopularityOptions = {}) {
    this.window = options.window ?? 1_000;
    this.maxDepth = options.maxDepth ?? 4_096;
    if (!(this.window >= 1) || !(this.maxDepth >= 1)) throw new RangeError("window and maxDepth must be ≥ 1");
  }

  get requests(): number {
    return this.ring.length;
  }

  requestsWith(key: BlockKey): number {
    return this.counts.get(key) ?? 0;
  }

  /** Counts one routed request; the oldest one leaves the window when it is full. */
  observe(keys: readonly BlockKey[]): void {
    const counted = keys.length > this.maxDepth ? keys.slice(0, this.maxDepth) : keys;
    if (this.ring.length === this.window) {
      for (const key of this.ring[this.next]) {
        const left = (this.counts.get(key) ?? 1) - 1;
        if (left > 0) this.counts.set(key, left);
        else this.counts.delete(key);
      }
      this.ring[this.next] = counted;
    } else {
      this.ring.push(counted);
    }
    this.next = (this.next + 1) % this.window;
    for (const key of counted) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}
