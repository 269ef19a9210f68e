/**
 * Embedded in-memory CacheIndex, the default for a single router. Everything lives in typed
 * arrays indexed by a stable block id (memory/*.ts):
 *
 *   BlockTable    block key → id; keys kept as 64-bit values, open addressing    12 B/block
 *   HolderSets    per block: one holder slot inline, or a pooled bitset            4 B/block
 *   RecencyList   eviction order (doubly linked)                                   8 B/block
 *   SlotLists     per holder slot, the ids it holds (clear in O(its entries))      4 B/entry
 *   ExpiryQueue   speculative entries' expiry, bucketed by second                  ~50 B/speculative entry
 *
 * A worker maps to a holder slot. Clearing a worker detaches its slot (O(1): lookups stop seeing
 * it at once) and frees the slot's entries in slices that yield to the event loop; a resync
 * larger than one slice is built in a fresh, unmapped slot in slices and swapped in at the end,
 * so it stays atomic to lookups; a batch larger than one slice is applied in order in slices that
 * yield (lookups may see a prefix of it). Later calls for that worker wait for either (call order
 * holds).
 *
 * Eviction: the least recently used block goes first once more than `maxEntries` blocks are held.
 * A store makes its keys the newest with the chain's first key newest of all, and a lookup does
 * the same for the blocks its walk reached, so a chain ages from its tail. A store that continues a
 * chain (an add with `parent`: vLLM stores a conversation's new blocks after their parent) puts its
 * keys just older than the parent, in chain order, so the head still outlives the tail; one whose
 * parent is not in the index can be reached by no lookup and goes oldest.
 *
 * Parameters: maxEntries (blocks, default 4,000,000 from config), now (injected clock, default
 * Date.now). Measured cost per entry: docs/benchmark.md, "Cache index".
 */
import { chainWords, type BlockKey } from "../prefix/block-keys";
import type { CacheIndex, IndexOp, IndexStats, WorkerId, WorkerIndexStats } from "./cache-index";
import { BlockTable } from "./memory/block-table";
import { ExpiryQueue } from "./memory/expiry-queue";
import { Held, HolderSets, MULTI, SLOT_BITS, SPEC } from "./memory/holder-sets";
import { RecencyList } from "./memory/recency-list";
import { SlotLists } from "./memory/slot-lists";

export interface MemoryCacheIndexOptions {
  readonly maxEntries: number;
  readonly now?: () => number;
}

/** Keys applied (or entries cleared) between two yields to the event loop. */
const SLICE = 16_384;
/** Expired entries dropped between two yields (a drop unlinks the entry from its slot's list and the recency order: ~4 ms). */
const SWEEP_SLICE = 4096;
/** Entry code = block id × SLOT_LIMIT + slot (below 2^53 for any id a typed array can index). */
const SLOT_LIMIT = 65_536;
const INITIAL_CAPACITY = 1024;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `work` over [0, length) in slices of SLICE, yielding to the event loop between them (the first runs at once). */
async function inSlices(length: number, work: (from: number, to: number) => void): Promise<void> {
  for (let from = 0; from < length; from += SLICE) {
    if (from > 0) await yieldToEventLoop();
    work(from, Math.min(length, from + SLICE));
  }
}

export class MemoryCacheIndex implements CacheIndex {
  private readonly table: BlockTable;
  private readonly holders: HolderSets;
  private readonly recency: RecencyList;
  private readonly lists = new SlotLists();
  private readonly spec = new ExpiryQueue();
  private readonly slotOf = new Map<WorkerId, number>();
  private readonly workerOfSlot: (WorkerId | undefined)[] = [];
  private readonly confirmedCount: number[] = [];
  private readonly speculativeCount: number[] = [];
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  /** Workers with a sliced call in progress: later calls for them run after it. */
  private readonly pending = new Map<WorkerId, Promise<void>>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private active = new Uint32Array(1);
  private reached = new Int32Array(256);
  /** Slots whose speculation on the current block expired (dropped after the block). */
  private readonly expired: number[] = [];

  constructor(options: MemoryCacheIndexOptions) {
    if (!(options.maxEntries > 0)) throw new RangeError(`maxEntries must be positive, got ${options.maxEntries}`);
    this.maxEntries = options.maxEntries;
    this.now = options.now ?? Date.now;
    this.holders = new HolderSets(INITIAL_CAPACITY);
    this.recency = new RecencyList(INITIAL_CAPACITY);
    this.table = new BlockTable(INITIAL_CAPACITY, (capacity) => {
      this.holders.grow(capacity);
      this.recency.grow(capacity);
    });
  }

  add(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.apply(worker, [{ op: "add", keys }]);
  }

  /** Like apply(): a chain of more than SLICE keys (a prompt of ~250k tokens) is stored in slices that yield. */
  addSpeculative(worker: WorkerId, keys: readonly BlockKey[], ttlMs: number): Promise<void> {
    if (keys.length === 0 || !(ttlMs > 0)) return Promise.resolve();
    const expiry = this.now() + ttlMs;
    const speculate = (from: number, to: number) => this.store(this.attach(worker), keys, from, to, expiry);
    return this.serial(worker, () => (keys.length > SLICE ? inSlices(keys.length, speculate) : speculate(0, keys.length)));
  }

  remove(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.apply(worker, [{ op: "remove", keys }]);
  }

  clearWorker(worker: WorkerId): Promise<void> {
    let cleaning: Promise<void> = Promise.resolve();
    const done = this.serial(worker, () => {
      cleaning = this.detach(worker);
    });
    return done.then(() => cleaning);
  }

  // Single-threaded: a synchronous body is atomic with respect to every other call. A batch of
  // more than SLICE keys is applied in order in slices that yield to the event loop (a batch at
  // the ingest limit would otherwise hold it for most of a second); lookups may see part of it.
  apply(worker: WorkerId, ops: readonly IndexOp[]): Promise<void> {
    const cleanings: Promise<void>[] = [];
    const keys = ops.reduce((n, op) => n + (op.op === "clear" ? 0 : op.keys.length), 0);
    const done = this.serial(worker, () => (keys > SLICE ? this.applyInSlices(worker, ops, cleanings) : this.applySlice(worker, ops, cleanings)));
    return done.then(() => Promise.all(cleanings)).then(() => undefined);
  }

  private async applyInSlices(worker: WorkerId, ops: readonly IndexOp[], cleanings: Promise<void>[]): Promise<void> {
    for (const [i, op] of ops.entries()) {
      if (op.op === "clear") {
        this.applySlice(worker, [op], cleanings);
        continue;
      }
      for (let from = 0; from < op.keys.length; from += SLICE) {
        if (i > 0 || from > 0) await yieldToEventLoop();
        this.applySlice(worker, [op], cleanings, from, Math.min(op.keys.length, from + SLICE));
      }
    }
  }

  /** Applies `ops` (for one op, its keys from..to) synchronously. */
  private applySlice(worker: WorkerId, ops: readonly IndexOp[], cleanings: Promise<void>[], from = 0, to = Infinity): void {
    for (const op of ops) {
      if (op.op === "add") {
        const parent = op.parent === undefined ? undefined : from === 0 ? op.parent : op.keys[from - 1];
        this.store(this.attach(worker), op.keys, from, Math.min(to, op.keys.length), 0, parent);
      } else if (op.op === "remove") this.removeNow(worker, op.keys, from, Math.min(to, op.keys.length));
      else cleanings.push(this.detach(worker));
    }
  }

  replaceWorker(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    let cleaning: Promise<void> = Promise.resolve();
    const done = this.serial(worker, () => {
      if (keys.length <= SLICE) {
        cleaning = this.detach(worker);
        if (keys.length > 0) this.store(this.attach(worker), keys, 0, keys.length, 0);
        return undefined;
      }
      return this.replaceInSlices(worker, keys);
    });
    return done.then(() => cleaning);
  }

  lookup(keys: readonly BlockKey[], workers: readonly WorkerId[], parent?: BlockKey): Promise<ReadonlyMap<WorkerId, number>> {
    return Promise.resolve(this.lookupNow(keys, workers, parent));
  }

  /**
   * Synchronous lookup, for callers in the same process that cannot afford a microtask. The asked
   * workers form a bitset over slots, ANDed with each block's holders along the chain; the blocks
   * the walk reached become the newest, the chain's first block newest of all — or, continuing a
   * chain at `parent` (in the table), each just older than the one before it, the first just older
   * than the parent.
   */
  lookupNow(keys: readonly BlockKey[], workers: readonly WorkerId[], parent?: BlockKey): Map<WorkerId, number> {
    const runs = new Map<WorkerId, number>();
    const words = this.holders.words;
    if (this.active.length !== words) this.active = new Uint32Array(words);
    const active = this.active.fill(0);
    let asked = 0;
    for (const w of workers) {
      runs.set(w, 0);
      const slot = this.slotOf.get(w);
      if (slot !== undefined && (active[slot >>> 5] & (1 << (slot & 31))) === 0) {
        active[slot >>> 5] |= 1 << (slot & 31);
        asked++;
      }
    }
    if (asked === 0 || keys.length === 0) return runs;
    if (this.reached.length < keys.length) this.reached = new Int32Array(keys.length);
    const reached = this.reached;
    const holder = this.holders.holder;
    let now = -1;
    let i = 0;
    const values = chainWords(keys);
    for (; i < keys.length && asked > 0; i++) {
      const id = this.table.findAt(keys, values, i);
      if (id < 0) break;
      const v = holder[id];
      if ((v & MULTI) === 0) {
        // One holder: the walk goes on only for it, if it was asked and is live.
        const slot = (v & SLOT_BITS) - 1;
        const bit = 1 << (slot & 31);
        let held = (active[slot >>> 5] & bit) !== 0;
        if (held && v & SPEC) {
          if (now < 0) now = this.now();
          held = this.isLive(id, slot, now);
          if (!held) this.drop(id, slot, Held.Speculative);
        }
        if (held && asked === 1) {
          reached[i] = id;
          continue;
        }
        if (held) active[slot >>> 5] &= ~bit;
        asked = this.settleAll(active, runs, i);
        if (held) {
          active[slot >>> 5] = bit;
          asked = 1;
          reached[i] = id;
        }
        continue;
      }
      const base = (v & ~MULTI) * 2 * words;
      const pool = this.holders.pool;
      let expired = 0;
      for (let w = 0; w < words; w++) {
        const a = active[w];
        if (a === 0) continue;
        let keep = a & pool[base + w];
        let spec = a & pool[base + words + w];
        while (spec !== 0) {
          const low = spec & -spec;
          spec ^= low;
          const slot = w * 32 + 31 - Math.clz32(low);
          if (now < 0) now = this.now();
          if (this.isLive(id, slot, now)) keep |= low;
          else this.expired[expired++] = slot;
        }
        if (keep !== a) {
          asked -= this.settle(a & ~keep, w, runs, i);
          active[w] = keep;
        }
      }
      // Dropped only now: a drop may fold the block's set back inline, under the loop above.
      for (let e = 0; e < expired; e++) this.drop(id, this.expired[e], Held.Speculative);
      if (asked > 0) reached[i] = id;
    }
    if (asked > 0) this.settleAll(active, runs, i);
    const depth = Math.min(asked > 0 ? i : i - 1, keys.length);
    let anchor = parent === undefined ? -1 : this.table.find(parent);
    if (anchor >= 0) {
      for (let k = 0; k < depth; k++) {
        this.recency.unlink(reached[k]);
        this.recency.insertOlderThan(reached[k], anchor);
        anchor = reached[k];
      }
      return runs;
    }
    // The blocks reached become the newest, the chain's first block last (newest of all).
    for (let k = depth - 1; k >= 0; k--) this.recency.touch(reached[k]);
    return runs;
  }

  /**
   * Removes every expired speculative entry, O(entries that expired), SWEEP_SLICE of them between
   * two turns of the event loop: a burst of new long prompts expires together (150 chains of 2,048
   * keys: 130 ms in one piece), and decisions must not wait for it. Lookups never see an expired
   * entry meanwhile (they check expiry themselves). Resolves to how many it removed.
   */
  async sweepExpired(): Promise<number> {
    let removed = 0;
    const drop = (code: number) => {
      const id = Math.floor(code / SLOT_LIMIT);
      this.drop(id, code - id * SLOT_LIMIT, Held.Speculative);
      removed++;
    };
    const step = this.spec.sweep(this.now(), drop);
    while (!step(SWEEP_SLICE)) await yieldToEventLoop();
    return removed;
  }

  async stats(): Promise<IndexStats> {
    const workers: Record<WorkerId, WorkerIndexStats> = {};
    for (const [id, slot] of this.slotOf) workers[id] = { blocks: this.confirmedCount[slot], speculative: this.speculativeCount[slot] };
    return { entries: this.table.size, workers };
  }

  async close(): Promise<void> {
    this.spec.clear();
  }

  /** Runs `work` now, or after the worker's sliced call in progress; tracks it if it is sliced. */
  private serial(worker: WorkerId, work: () => Promise<void> | void): Promise<void> {
    const before = this.pending.get(worker);
    if (!before) {
      const sliced = work();
      return sliced ? this.track(worker, sliced) : Promise.resolve();
    }
    return this.track(worker, before.then(work));
  }

  private track(worker: WorkerId, work: Promise<void>): Promise<void> {
    const tracked: Promise<void> = work.finally(() => {
      if (this.pending.get(worker) === tracked) this.pending.delete(worker);
    });
    this.pending.set(worker, tracked);
    return tracked;
  }

  private async replaceInSlices(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    const shadow = this.allocateSlot(); // unmapped: invisible until the swap
    for (let from = 0; from < keys.length; from += SLICE) {
      this.store(shadow, keys, from, Math.min(keys.length, from + SLICE), 0);
      await yieldToEventLoop();
    }
    const old = this.detach(worker);
    this.slotOf.set(worker, shadow);
    this.workerOfSlot[shadow] = worker;
    await old;
  }

  private attach(worker: WorkerId): number {
    let slot = this.slotOf.get(worker);
    if (slot === undefined) {
      slot = this.allocateSlot();
      this.slotOf.set(worker, slot);
      this.workerOfSlot[slot] = worker;
    }
    return slot;
  }

  private allocateSlot(): number {
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.nextSlot++;
    if (slot >= SLOT_LIMIT) throw new RangeError(`more than ${SLOT_LIMIT} holder slots`);
    this.holders.widen(slot + 1);
    this.confirmedCount[slot] = 0;
    this.speculativeCount[slot] = 0;
    return slot;
  }

  /** Unmaps the worker's slot at once, then frees its entries in slices; resolves when done. */
  private detach(worker: WorkerId): Promise<void> {
    const slot = this.slotOf.get(worker);
    if (slot === undefined) return Promise.resolve();
    this.slotOf.delete(worker);
    this.workerOfSlot[slot] = undefined;
    const ids = this.lists.take(slot);
    if (ids.length <= SLICE) {
      this.freeSlot(slot, ids, 0, ids.length); // an empty slot too: freeSlot returns it to the free list
      return Promise.resolve();
    }
    return inSlices(ids.length, (from, to) => this.freeSlot(slot, ids, from, to));
  }

  /** Drops the slot's entries among ids[from, to); after the last slice, the slot is reusable. */
  private freeSlot(slot: number, ids: Uint32Array, from: number, to: number): void {
    for (let k = from; k < to; k++) {
      const held = this.holders.state(ids[k], slot);
      if (held !== Held.None) this.drop(ids[k], slot, held);
    }
    if (to === ids.length) this.freeSlots.push(slot);
  }

  /**
   * Records keys[from, to) for the slot. Without `parent`, the last key first, so the chain's first
   * key ends up the newest. With `parent` (the keys continue a stored chain), each key goes just
   * older than the one before it, the first just older than the parent, so the chain's head never
   * ages before its tail; without its parent in the table the continuation cannot be reached by any
   * lookup, and goes oldest (evicted first).
   */
  private store(slot: number, keys: readonly BlockKey[], from: number, to: number, expiry: number, parent?: BlockKey): void {
    const words = chainWords(keys);
    if (parent === undefined) {
      for (let k = to - 1; k >= from; k--) {
        const id = this.table.findOrInsertAt(keys, words, k);
        if (this.table.inserted) this.recency.push(id);
        else this.recency.touch(id);
        this.hold(slot, id, expiry);
      }
      return;
    }
    let anchor = this.table.find(parent);
    for (let k = from; k < to; k++) {
      const id = this.table.findOrInsertAt(keys, words, k);
      if (!this.table.inserted) this.recency.unlink(id);
      if (anchor >= 0 && anchor !== id) this.recency.insertOlderThan(id, anchor);
      else this.recency.pushOldest(id);
      anchor = this.hold(slot, id, expiry) ? id : -1;
    }
  }

  /** The slot holds block `id` (confirmed, or speculative until `expiry`); false when the bound then evicted `id` itself. */
  private hold(slot: number, id: number, expiry: number): boolean {
    const held = this.holders.state(id, slot);
    if (held === Held.Confirmed) return true;
    const code = id * SLOT_LIMIT + slot;
    if (expiry === 0) {
      this.holders.set(id, slot, Held.Confirmed);
      this.confirmedCount[slot]++;
      if (held === Held.Speculative) {
        this.spec.delete(code);
        this.speculativeCount[slot]--;
      } else {
        this.listEntry(slot, id);
      }
    } else if (held === Held.Speculative) {
      if (expiry > this.spec.get(code)!) this.spec.set(code, expiry);
    } else {
      this.holders.set(id, slot, Held.Speculative);
      this.speculativeCount[slot]++;
      this.spec.set(code, expiry);
      this.listEntry(slot, id);
    }
    return this.table.size > this.maxEntries ? this.evictOldest() !== id : true;
  }

  private listEntry(slot: number, id: number): void {
    const live = this.confirmedCount[slot] + this.speculativeCount[slot];
    this.lists.push(slot, id, live, (other) => this.holders.state(other, slot) !== Held.None);
  }

  private removeNow(worker: WorkerId, keys: readonly BlockKey[], from = 0, to = keys.length): void {
    const slot = this.slotOf.get(worker);
    if (slot === undefined) return;
    for (let k = from; k < to; k++) {
      const id = this.table.find(keys[k]);
      if (id < 0) continue;
      const held = this.holders.state(id, slot);
      if (held !== Held.None) this.drop(id, slot, held);
    }
  }

  private isLive(id: number, slot: number, now: number): boolean {
    const expiry = this.spec.get(id * SLOT_LIMIT + slot);
    return expiry !== undefined && expiry > now;
  }

  private drop(id: number, slot: number, held: Held): void {
    this.holders.set(id, slot, Held.None);
    if (held === Held.Speculative) {
      this.speculativeCount[slot]--;
      this.spec.delete(id * SLOT_LIMIT + slot);
    } else {
      this.confirmedCount[slot]--;
    }
    if (this.holders.holder[id] === 0) this.freeBlock(id);
  }

  private freeBlock(id: number): void {
    this.recency.unlink(id);
    this.table.delete(id);
  }

  /** Evicts the least recently used block; returns its id. */
  private evictOldest(): number {
    const id = this.recency.oldest;
    this.holders.forEach(id, (slot, held) => {
      if (held === Held.Speculative) {
        this.speculativeCount[slot]--;
        this.spec.delete(id * SLOT_LIMIT + slot);
      } else {
        this.confirmedCount[slot]--;
      }
    });
    this.holders.clear(id);
    this.freeBlock(id);
    return id;
  }

  /** Every active worker ends its run at `run`; returns 0 (none left). */
  private settleAll(active: Uint32Array, runs: Map<WorkerId, number>, run: number): number {
    for (let w = 0; w < active.length; w++) {
      if (active[w] !== 0) this.settle(active[w], w, runs, run);
      active[w] = 0;
    }
    return 0;
  }

  /** Workers of the slots in `bits` (word w) end their run at `run`; returns how many. */
  private settle(bits: number, w: number, runs: Map<WorkerId, number>, run: number): number {
    let n = 0;
    while (bits !== 0) {
      const low = bits & -bits;
      bits ^= low;
      runs.set(this.workerOfSlot[w * 32 + 31 - Math.clz32(low)]!, run);
      n++;
    }
    return n;
  }
}
