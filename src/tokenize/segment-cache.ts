/**
 * LRU of segment key → token ids, bounded by an estimate of the bytes it holds:
 * 2 bytes per key character (V8 two-byte strings at worst) + 4 bytes per id + ENTRY_OVERHEAD for
 * the Map entry and typed array headers. Keys must own their characters (a digest, not a slice of a
 * larger string), or the estimate undercounts what the cache keeps alive. A segment costing more than the whole budget is not cached.
 * Budget 0 disables caching. Keys carry a per-tokenizer namespace so models share one budget.
 * Map iteration order is insertion order, so re-inserting on a hit keeps the oldest entry first.
 */
export const ENTRY_OVERHEAD = 96;

export interface SegmentCacheStats {
  readonly segmentHits: number;
  readonly segmentMisses: number;
  readonly cachedBytes: number;
}

export class SegmentCache {
  private readonly entries = new Map<string, Uint32Array>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Uint32Array | undefined {
    const ids = this.entries.get(key);
    if (ids === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, ids);
    return ids;
  }

  set(key: string, ids: Uint32Array): void {
    const cost = entryCost(key, ids);
    if (cost > this.maxBytes) return;
    const previous = this.entries.get(key);
    if (previous !== undefined) {
      this.entries.delete(key);
      this.bytes -= entryCost(key, previous);
    }
    this.entries.set(key, ids);
    this.bytes += cost;
    for (const [oldKey, oldIds] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldKey);
      this.bytes -= entryCost(oldKey, oldIds);
    }
  }

  stats(): SegmentCacheStats {
    return { segmentHits: this.hits, segmentMisses: this.misses, cachedBytes: this.bytes };
  }
}

function entryCost(key: string, ids: Uint32Array): number {
  return 2 * key.length + 4 * ids.length + ENTRY_OVERHEAD;
}
