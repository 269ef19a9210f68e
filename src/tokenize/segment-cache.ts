/**
 * LRU of segment key → token ids, bounded by an estimate of the bytes it holds:
 * 2 bytes per key character (V8 two-byte strings at worst) + 4 bytes per id + ENTRY_OVERHEAD for
 * the Map entry and typed array headers. Keys must own their characters (a digest, not a slice of a
 * larger string), or the estimate undercounts what the cache keeps alive. A segment costing more than the whole budget is not cached.
 * Budget 0 disables caching. Keys carry a per-tokenizer namespace so models share one budget.
 * Map iteration order is insertion order, so re-inserting on a hit keeps the oldest entry first.
 *
 * The same LRU and budget also hold the cuts of long segments (SegmentCuts, segmented-encoder.ts):
 * their text (2 bytes per character), each piece's key and end, under a key of their own.
 */
export const ENTRY_OVERHEAD = 96;

export interface SegmentCacheStats {
  readonly segmentHits: number;
  readonly segmentMisses: number;
  readonly cachedBytes: number;
  /** Folded in by the prompt keyer: prompts whose rest it did not key in the background (its line was full). */
  readonly backgroundDropped?: number;
  /** Folded in by a tokenizer thread: body bytes it did not decode or parse again (body-prefix-memo.ts). */
  readonly bodyBytesReused?: number;
}

/** A long segment as it was cut into pieces: recognised again by comparing its text. */
export interface SegmentCuts {
  /** The segment, an owned copy (no slice of a prompt: it would pin the prompt). */
  readonly text: string;
  /** Each piece's cache key, in order. */
  readonly keys: readonly string[];
  /** Each piece's end offset in `text`. */
  readonly ends: Uint32Array;
}

type Entry = Uint32Array | SegmentCuts;

export class SegmentCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Uint32Array | undefined {
    const ids = this.touch(key);
    if (ids instanceof Uint32Array) this.hits++;
    else this.misses++;
    return ids instanceof Uint32Array ? ids : undefined;
  }

  set(key: string, ids: Uint32Array): void {
    this.put(key, ids);
  }

  /** The cuts stored under `key` (not counted as a segment hit or miss). */
  getCuts(key: string): SegmentCuts | undefined {
    const cuts = this.touch(key);
    return cuts instanceof Uint32Array ? undefined : cuts;
  }

  setCuts(key: string, cuts: SegmentCuts): void {
    this.put(key, cuts);
  }

  private touch(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry;
  }

  private put(key: string, entry: Entry): void {
    const cost = entryCost(key, entry);
    if (cost > this.maxBytes) return;
    const previous = this.entries.get(key);
    if (previous !== undefined) {
      this.entries.delete(key);
      this.bytes -= entryCost(key, previous);
    }
    this.entries.set(key, entry);
    this.bytes += cost;
    for (const [oldKey, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldKey);
      this.bytes -= entryCost(oldKey, old);
    }
  }

  stats(): SegmentCacheStats {
    return { segmentHits: this.hits, segmentMisses: this.misses, cachedBytes: this.bytes };
  }
}

function entryCost(key: string, entry: Entry): number {
  if (entry instanceof Uint32Array) return 2 * key.length + 4 * entry.length + ENTRY_OVERHEAD;
  let keys = 0;
  for (const k of entry.keys) keys += 2 * k.length + 8;
  return 2 * key.length + 2 * entry.text.length + keys + 4 * entry.ends.length + ENTRY_OVERHEAD;
}
