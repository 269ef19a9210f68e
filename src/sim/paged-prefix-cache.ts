/**
 * vLLM V1's paged KV cache with prefix caching (vllm/v1/core/block_pool.py), in router keys.
 *
 * - `totalBlocks` fixed blocks. Every block with refcount 0 sits in one free queue, oldest first;
 *   at start all blocks are there in id order. New blocks are popped from the head.
 * - A full block can be cached under its key. Popping a cached block evicts it: the key is dropped
 *   and a "removed" event emitted (adjacent evictions merge into one event).
 * - touch() pins cached blocks (refcount++), taking refcount-0 ones out of the free queue.
 * - release() drops refcounts in reverse order, so a chain's tail reaches the queue first and is
 *   evicted before its head (vLLM frees `reversed(req_blocks)`); released blocks stay cached.
 * - Two blocks may hold one key (two requests computed the same block at once). Unlike vLLM, which
 *   reports each copy, we report a key when its first copy is cached and its removal when its last
 *   copy goes, so the router's set-of-keys view is exact.
 * Pure and synchronous; the engine (replica-engine.ts) decides what to allocate and when.
 */
import type { BlockKey } from "../prefix/block-keys";
import type { EngineKvEvent } from "./replica-model";

export type BlockId = number;

const NONE = -1;

export class PagedPrefixCache {
  readonly totalBlocks: number;
  private readonly refs: Int32Array;
  private readonly keyOf: (BlockKey | undefined)[];
  private readonly holders = new Map<BlockKey, BlockId[]>();
  // Free queue: a doubly linked list over block ids, O(1) pop, append and removal from the middle.
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly queued: Uint8Array;
  private head = NONE;
  private tail = NONE;
  private free = 0;
  private events: EngineKvEvent[] = [];

  constructor(
    totalBlocks: number,
    readonly blockSize: number,
  ) {
    if (!Number.isInteger(totalBlocks) || totalBlocks <= 0) throw new RangeError(`totalBlocks must be a positive integer, got ${totalBlocks}`);
    if (!Number.isInteger(blockSize) || blockSize <= 0) throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
    this.totalBlocks = totalBlocks;
    this.refs = new Int32Array(totalBlocks);
    this.keyOf = new Array<BlockKey | undefined>(totalBlocks).fill(undefined);
    this.next = new Int32Array(totalBlocks).fill(NONE);
    this.prev = new Int32Array(totalBlocks).fill(NONE);
    this.queued = new Uint8Array(totalBlocks);
    for (let b = 0; b < totalBlocks; b++) this.append(b);
  }

  /** Blocks in the free queue (never used, or released and possibly still cached). */
  freeBlocks(): number {
    return this.free;
  }

  /** Blocks pinned by running requests. */
  usedBlocks(): number {
    return this.totalBlocks - this.free;
  }

  holds(key: BlockKey): boolean {
    return this.holders.has(key);
  }

  /** Every key cached right now (for a resync snapshot), in no particular order. */
  cachedKeys(): BlockKey[] {
    return [...this.holders.keys()];
  }

  /** Length of the longest leading run of `keys` cached, at most `maxBlocks`. */
  cachedPrefix(keys: readonly BlockKey[], maxBlocks = keys.length): number {
    const limit = Math.min(maxBlocks, keys.length);
    let n = 0;
    while (n < limit && this.holders.has(keys[n])) n++;
    return n;
  }

  /** How many of these cached keys' blocks touch() would take out of the free queue. */
  unpinnedAmong(keys: readonly BlockKey[]): number {
    let n = 0;
    for (const key of keys) if (this.refs[this.pick(key)] === 0) n++;
    return n;
  }

  /** Pins one block of each cached key (a prefix hit). Every key must be cached. */
  touch(keys: readonly BlockKey[]): BlockId[] {
    return keys.map((key) => {
      const block = this.pick(key);
      if (this.refs[block]++ === 0) this.unlink(block);
      return block;
    });
  }

  /** Pops `n` blocks from the free queue (evicting cached ones), pinned; null when fewer are free. */
  allocate(n: number): BlockId[] | null {
    if (n > this.free) return null;
    const out: BlockId[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const block = this.head;
      this.unlink(block);
      this.evict(block);
      this.refs[block] = 1;
      out[i] = block;
    }
    return out;
  }

  /**
   * Caches a run of a request's newly full blocks, in chain order. `parent` is the key of the block
   * before the run (null at block 0); `tokens` holds exactly the run's tokens. Keys already held by
   * another block are not reported again, which splits the reported run around them.
   */
  cacheRun(blocks: readonly BlockId[], keys: readonly BlockKey[], parent: BlockKey | null, tokens: Uint32Array): void {
    const { blockSize } = this;
    if (tokens.length !== blocks.length * blockSize || keys.length !== blocks.length) throw new RangeError("cacheRun: blocks, keys and tokens disagree");
    let runStart = -1;
    const flush = (end: number) => {
      if (runStart < 0) return;
      const runParent = runStart === 0 ? parent : keys[runStart - 1];
      this.events.push({ type: "stored", keys: keys.slice(runStart, end), parent: runParent, tokens: tokens.slice(runStart * blockSize, end * blockSize) });
      runStart = -1;
    };
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i];
      if (this.keyOf[block] !== undefined) throw new Error(`block ${block} is already cached`);
      this.keyOf[block] = keys[i];
      const copies = this.holders.get(keys[i]);
      if (copies) {
        copies.push(block);
        flush(i);
      } else {
        this.holders.set(keys[i], [block]);
        if (runStart < 0) runStart = i;
      }
    }
    flush(blocks.length);
  }

  /** Unpins a request's blocks (given in request order); refcount-0 blocks join the queue tail-first. */
  release(blocks: readonly BlockId[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const block = blocks[i];
      if (this.refs[block] <= 0) throw new Error(`block ${block} released while not pinned`);
      if (--this.refs[block] === 0) this.append(block);
    }
  }

  /** Drops every cached key (vLLM's reset_prefix_cache); refused (false) while blocks are pinned. */
  reset(): boolean {
    if (this.free !== this.totalBlocks) return false;
    this.keyOf.fill(undefined);
    this.holders.clear();
    this.events.push({ type: "cleared" });
    return true;
  }

  /** Events since the last call, drained. */
  takeEvents(): EngineKvEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  /** A block holding `key`, preferring one already pinned (touching it costs no free block). */
  private pick(key: BlockKey): BlockId {
    const copies = this.holders.get(key);
    if (!copies) throw new Error(`key ${key} is not cached`);
    for (const b of copies) if (this.refs[b] > 0) return b;
    return copies[0];
  }

  private evict(block: BlockId): void {
    const key = this.keyOf[block];
    if (key === undefined) return;
    this.keyOf[block] = undefined;
    const copies = this.holders.get(key)!;
    if (copies.length > 1) {
      copies.splice(copies.indexOf(block), 1);
      return;
    }
    this.holders.delete(key);
    const last = this.events[this.events.length - 1];
    if (last?.type === "removed") (last.keys as BlockKey[]).push(key);
    else this.events.push({ type: "removed", keys: [key] });
  }

  private append(block: BlockId): void {
    this.prev[block] = this.tail;
    this.next[block] = NONE;
    if (this.tail === NONE) this.head = block;
    else this.next[this.tail] = block;
    this.tail = block;
    this.queued[block] = 1;
    this.free++;
  }

  private unlink(block: BlockId): void {
    if (!this.queued[block]) throw new Error(`block ${block} is not in the free queue`);
    const p = this.prev[block];
    const n = this.next[block];
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
    this.queued[block] = 0;
    this.free--;
  }
}
