/**
 * Keys of token runs already hashed: requests that share a prefix (a system prompt, a conversation's
 * earlier turns) reuse its block keys instead of hashing them again.
 *
 * The caller names each point of a prompt by a state key that identifies everything before it (a
 * chained digest of the prompt's pieces, see tokenize/prompt-keyer.ts). A *run* is what one prompt
 * left behind: one buffer of its block keys and, at some of its points, a state — tokens so far,
 * blocks so far (a prefix of the buffer) and the ids of the trailing partial block. A later prompt
 * continues from the last state it shares and hashes only what follows.
 *
 * LRU by run, bounded by an estimate of the bytes held (keys, tails, state keys, ENTRY_OVERHEAD per
 * state). A state key registered again points to the newer run; a run none of whose states is
 * reachable any more is dropped at once. Budget 0 disables the cache.
 */
import { KEY_BYTES } from "./block-keys";

export const STATE_OVERHEAD = 96;

export interface ChainState {
  readonly tokens: number;
  /** Block keys up to this point (KEY_BYTES each), a view of the run's buffer. */
  readonly keys: Uint8Array;
  /** Ids after the last full block (fewer than blockSize). */
  readonly tail: Uint32Array;
}

export interface RunPoint {
  readonly key: string;
  readonly tokens: number;
  readonly blocks: number;
  readonly tail: Uint32Array;
}

interface Run {
  readonly keys: Uint8Array;
  readonly points: readonly RunPoint[];
  readonly bytes: number;
  live: number;
}

export interface ChainStateStats {
  readonly hits: number;
  readonly misses: number;
  readonly bytes: number;
}

export class ChainStateCache {
  private readonly runs = new Set<Run>(); // insertion order = LRU order
  private readonly index = new Map<string, { readonly run: Run; readonly point: number }>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(private readonly maxBytes: number) {}

  /** The state of the last of `keys` that is cached (one hit or one miss counted), or null. */
  last(keys: readonly string[]): { readonly at: number; readonly state: ChainState } | null {
    for (let at = keys.length - 1; at >= 0; at--) {
      const entry = this.index.get(keys[at]);
      if (entry === undefined) continue;
      this.hits++;
      this.runs.delete(entry.run);
      this.runs.add(entry.run);
      const p = entry.run.points[entry.point];
      return { at, state: { tokens: p.tokens, keys: entry.run.keys.subarray(0, p.blocks * KEY_BYTES), tail: p.tail } };
    }
    this.misses++;
    return null;
  }

  /** Records a run: `keys` holds every block key of the prompt, `points` its states in order. */
  put(keys: Uint8Array, points: readonly RunPoint[]): void {
    if (points.length === 0) return;
    let bytes = keys.byteLength;
    for (const p of points) bytes += STATE_OVERHEAD + 2 * p.key.length + 4 * p.tail.length;
    if (bytes > this.maxBytes) return;
    const run: Run = { keys, points, bytes, live: 0 };
    this.runs.add(run);
    this.bytes += bytes;
    points.forEach((p, i) => {
      const previous = this.index.get(p.key);
      if (previous !== undefined) this.release(previous.run);
      this.index.set(p.key, { run, point: i });
      run.live++;
    });
    for (const oldest of this.runs) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(oldest);
    }
  }

  stats(): ChainStateStats {
    return { hits: this.hits, misses: this.misses, bytes: this.bytes };
  }

  /** One of `run`'s state keys now points elsewhere. */
  private release(run: Run): void {
    if (--run.live === 0) this.drop(run);
  }

  private drop(run: Run): void {
    if (!this.runs.delete(run)) return;
    this.bytes -= run.bytes;
    for (const p of run.points) if (this.index.get(p.key)?.run === run) this.index.delete(p.key);
  }
}
