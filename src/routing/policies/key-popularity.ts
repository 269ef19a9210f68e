/**
 * How many of the last `window` requests carried each block key — the data producer behind
 * consistent hashing's "first non-shared block" and min-ttft's shared-prefix charge. Fed only with
 * what a router sees (the keys of requests it routed, in order), never with workload labels such
 * as conversation ids.
 *
 * Keys are chained, so a request holding key i holds keys 0..i-1 too: popularity never rises along
 * a chain, and the first unpopular key is the point where a prompt stops being shared.
 * Only the first `maxDepth` keys of a request are counted (deeper keys read as 0).
 *
 * Storage: a key is a 64-bit value in a BlockTable (the memory index's key → id table) with a count
 * per id, and the window keeps each request's ids (4 bytes per key), not its key strings: with
 * 2,048-key prompts, 1,000 requests of strings kept ~180 MB of small heap objects alive, each of
 * them for 1,000 requests, long enough to reach the old generation. The last four requests also
 * keep a copy of their key values, to be compared with the next request's.
 *
 * Parameters: window 1,000 requests; maxDepth 4,096 blocks (64k tokens at 16 per block).
 */
import { chainWords, type BlockKey } from "../../prefix/block-keys";
import { BlockTable } from "../../state/memory/block-table";
import type { PopularityView } from "./routing-policy";

export interface KeyPopularityOptions {
  readonly window?: number;
  readonly maxDepth?: number;
}

const INITIAL_CAPACITY = 1024;
/** Recent requests a new one is compared with for a shared head (each a copy of its key values). */
const RECENT = 4;

interface RecentRequest {
  /** Its keys' 64-bit values, or (for keys given without them) the keys themselves. */
  readonly words: Uint32Array | undefined;
  readonly keys: readonly BlockKey[] | undefined;
  readonly ids: Int32Array;
}

export class KeyPopularity implements PopularityView {
  private readonly table: BlockTable;
  private counts = new Int32Array(INITIAL_CAPACITY);
  private readonly ring: Int32Array[] = [];
  private next = 0;
  /** The last min(RECENT, window) requests observed, newest first. */
  private readonly recent: RecentRequest[] = [];
  readonly window: number;
  readonly maxDepth: number;

  constructor(options: KeyPopularityOptions = {}) {
    this.window = options.window ?? 1_000;
    this.maxDepth = options.maxDepth ?? 4_096;
    if (!(this.window >= 1) || !(this.maxDepth >= 1)) throw new RangeError("window and maxDepth must be ≥ 1");
    this.table = new BlockTable(INITIAL_CAPACITY, (capacity) => {
      const counts = new Int32Array(capacity);
      counts.set(this.counts);
      this.counts = counts;
    });
  }

  get requests(): number {
    return this.ring.length;
  }

  requestsWith(keys: readonly BlockKey[], at: number): number {
    const id = this.table.findAt(keys, chainWords(keys), at);
    return id < 0 ? 0 : this.counts[id];
  }

  /**
   * Counts one routed request; the oldest one leaves the window when it is full. The leading keys
   * it shares with one of the last few requests take their ids from that request (no table
   * lookups): a 2,048-key prompt that shares its system prompt and history with the previous turn
   * costs a comparison of 64-bit values and a count per key.
   */
  observe(keys: readonly BlockKey[]): void {
    const depth = Math.min(keys.length, this.maxDepth);
    const ids = new Int32Array(depth);
    const words = chainWords(keys);
    const { shared, from } = this.longestSharedHead(keys, words, depth);
    for (let i = 0; i < shared; i++) {
      const id = from!.ids[i];
      this.counts[id]++;
      ids[i] = id;
    }
    for (let i = shared; i < depth; i++) {
      const id = this.table.findOrInsertAt(keys, words, i);
      this.counts[id]++;
      ids[i] = id;
    }
    // Counted before the oldest is forgotten: ids taken from a recent request stay live.
    if (this.ring.length === this.window) {
      this.forget(this.ring[this.next]);
      this.ring[this.next] = ids;
    } else this.ring.push(ids);
    this.next = (this.next + 1) % this.window;
    this.recent.unshift({ words: words?.slice(0, 2 * depth), keys: words === undefined ? keys.slice(0, depth) : undefined, ids });
    // Only requests still in the window: their ids are counted, so no other key has taken them.
    if (this.recent.length > Math.min(RECENT, this.window)) this.recent.pop();
  }

  /** The recent request sharing the most leading keys with `keys` (up to `depth`), and how many. */
  private longestSharedHead(keys: readonly BlockKey[], words: Uint32Array | undefined, depth: number): { shared: number; from: RecentRequest | undefined } {
    let shared = 0;
    let from: RecentRequest | undefined;
    for (const r of this.recent) {
      const limit = Math.min(depth, r.ids.length);
      let n = 0;
      const { words: theirWords, keys: theirKeys } = r;
      if (words !== undefined && theirWords !== undefined) {
        while (n < limit && words[2 * n] === theirWords[2 * n] && words[2 * n + 1] === theirWords[2 * n + 1]) n++;
      } else if (theirKeys !== undefined) {
        while (n < limit && keys[n] === theirKeys[n]) n++;
      }
      if (n > shared) (shared = n), (from = r);
    }
    return { shared, from };
  }

  private forget(ids: Int32Array): void {
    for (const id of ids) {
      if (--this.counts[id] === 0) this.table.delete(id);
    }
  }
}
