/**
 * Block table: block key → stable block id, over typed arrays. A key is kept as its 64-bit value
 * (two uint32: the 16 hex digits of docs/prefix-keys.md, parsed; any other string is hashed to 64
 * bits), side by side in one array so a match reads one cache line, and ids index every per-block
 * array of the memory index. The id index is open addressing with linear probing and
 * backward-shift deletion over an Int32Array, sized 1.4× the id capacity (load ≤ 0.71, short probe
 * runs), mapped by multiply-shift so its size need not be a power of two. A key's home slot depends
 * on its low word only, so moving a slot during a deletion reads one word per member.
 *
 * A slot holds the id in its low log2(capacity) bits and, in the bits an id does not use (31 −
 * log2(capacity): 9 at 4M ids), a tag taken from the key's high word: a probe passes slots of
 * other keys without reading their keys (a miss in a large table costs a memory read per probe
 * otherwise). The tag narrows as the table grows and is recomputed at each doubling.
 *
 * Cost: 13.6 B per id (two key words, one index slot ×1.4) plus growth slack; ids double when
 * full, and the index then moves to one sized for them a few slots per call (the old one is freed
 * once moved: two indexes only while the table grows toward its maximum).
 */
import { mix32 } from "../../common/mix32";

const EMPTY = -1;
const SLOTS_PER_ID = 1.4;
const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) HEX[97 + c] = HEX[65 + c] = 10 + c;

/** uint32 of 8 hex digits at `from`, or -1 when one is not a hex digit. */
function hexWord(key: string, from: number): number {
  let v = 0;
  for (let i = from; i < from + 8; i++) {
    const c = key.charCodeAt(i);
    const d = c < 128 ? HEX[c] : -1;
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v >>> 0;
}

/** FNV-1a over UTF-16 code units from a given basis: the fallback for keys that are not 16 hex digits. */
function fnv(key: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Index slot of an id deleted while its index is being moved away from (probes pass it, moves skip it). */
const GONE = -2;
/**
 * Slots of the old index moved per findOrInsert() or delete() while the table grows: the ids have
 * just doubled, so at least as many inserts as the old index has ids come before the next growth,
 * and its 1.4 slots per id are moved long before (4 per call: within 0.35 calls per id). More per
 * call only makes each call of the growth slower (16: a 2,048-key store 0.7 → 8 ms).
 */
const MOVE_PER_CALL = 4;

/** The id index: open addressing over an Int32Array, a slot holding id | tag << idBits. */
class SlotIndex {
  readonly slots: Int32Array;
  readonly slotCount: number;
  /** Slot = id | tag << idBits; the id is slot & idMask. */
  readonly idBits: number;
  readonly idMask: number;
  readonly tagMask: number;

  /** For ids below `capacity` (a power of two). */
  constructor(capacity: number) {
    this.slotCount = Math.ceil(capacity * SLOTS_PER_ID);
    this.slots = new Int32Array(this.slotCount).fill(EMPTY);
    this.idBits = 31 - Math.clz32(capacity);
    this.idMask = capacity - 1;
    this.tagMask = this.idBits >= 31 ? 0 : (1 << (31 - this.idBits)) - 1;
  }

  home(lo: number): number {
    // Mixed: keys from a worker are not trusted to be random.
    return Math.floor((mix32(lo) * this.slotCount) / 4294967296);
  }

  /** The slot of the key (hi, lo), or -1. */
  slotOf(keys: Uint32Array, hi: number, lo: number): number {
    const { slots, idBits, idMask } = this;
    const tag = hi & this.tagMask;
    let at = this.home(lo);
    for (;;) {
      const v = slots[at];
      if (v === EMPTY) return -1;
      if (v >>> idBits === tag && v !== GONE) {
        const id = v & idMask;
        if (keys[2 * id + 1] === lo && keys[2 * id] === hi) return at;
      }
      at = at + 1 === this.slotCount ? 0 : at + 1;
    }
  }

  /** The slot of `id`, or -1. */
  slotOfId(keys: Uint32Array, id: number): number {
    let at = this.home(keys[2 * id + 1]);
    for (;;) {
      const v = this.slots[at];
      if (v === EMPTY) return -1;
      if (v !== GONE && (v & this.idMask) === id) return at;
      at = at + 1 === this.slotCount ? 0 : at + 1;
    }
  }

  place(keys: Uint32Array, id: number): void {
    let at = this.home(keys[2 * id + 1]);
    while (this.slots[at] !== EMPTY) at = at + 1 === this.slotCount ? 0 : at + 1;
    this.slots[at] = id | ((keys[2 * id] & this.tagMask) << this.idBits);
  }

  /** Empties slot `at` by backward-shift deletion (an index without GONE slots only). */
  remove(keys: Uint32Array, at: number): void {
    const { slots, idMask } = this;
    let hole = at;
    let j = at;
    for (;;) {
      j = j + 1 === this.slotCount ? 0 : j + 1;
      const other = slots[j];
      if (other === EMPTY) break;
      const home = this.home(keys[2 * (other & idMask) + 1]);
      // `other` may move into the hole only if its home is not cyclically within (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!between) {
        slots[hole] = other;
        hole = j;
      }
    }
    slots[hole] = EMPTY;
  }
}

export class BlockTable {
  /** Ids allocated so far fit below this; per-block arrays elsewhere are this long. */
  capacity: number;
  /** Key words of id i: keys[2i] high, keys[2i + 1] low. */
  private keys: Uint32Array;
  /** Live ids. */
  size = 0;
  private index: SlotIndex;
  /**
   * While the table grows: the index it replaces, whose slots below `moved` are in `index` now
   * (moved MOVE_PER_CALL at a time, not all at once: at 2M ids a rehash in one piece held the
   * event loop for ~100 ms). An id is in one of the two.
   */
  private old: SlotIndex | null = null;
  private moved = 0;
  private nextId = 0;
  private freeIds: number[] = [];
  private hi = 0;
  private lo = 0;

  constructor(
    initialCapacity: number,
    private readonly onGrow: (capacity: number) => void,
  ) {
    if (initialCapacity & (initialCapacity - 1)) throw new RangeError("the initial capacity must be a power of two");
    this.capacity = initialCapacity;
    this.keys = new Uint32Array(2 * initialCapacity);
    this.index = new SlotIndex(initialCapacity);
  }

  /** Whether a growth is still moving ids to the new index (for tests). */
  get growing(): boolean {
    return this.old !== null;
  }

  /** The key's id, or -1. */
  find(key: string): number {
    this.parse(key);
    return this.findParsed();
  }

  /** find() for a key given as its 64-bit value (a KeyChain's words). */
  private findWords(hi: number, lo: number): number {
    this.hi = hi;
    this.lo = lo;
    return this.findParsed();
  }

  /** find() for keys[i], read from `words` (the chain's chainWords()) when the chain carries them. */
  findAt(keys: readonly string[], words: Uint32Array | undefined, i: number): number {
    return words ? this.findWords(words[2 * i], words[2 * i + 1]) : this.find(keys[i]);
  }

  /** findOrInsert() for keys[i], as findAt() reads it. */
  findOrInsertAt(keys: readonly string[], words: Uint32Array | undefined, i: number): number {
    return words ? this.findOrInsertWords(words[2 * i], words[2 * i + 1]) : this.findOrInsert(keys[i]);
  }

  /** The key's id, inserting it if absent (then `inserted` is true). */
  findOrInsert(key: string): number {
    this.parse(key);
    return this.findOrInsertParsed();
  }

  /** findOrInsert() for a key given as its 64-bit value. */
  private findOrInsertWords(hi: number, lo: number): number {
    this.hi = hi;
    this.lo = lo;
    return this.findOrInsertParsed();
  }

  private findOrInsertParsed(): number {
    if (this.old !== null) this.moveSome(MOVE_PER_CALL);
    const found = this.findParsed();
    this.inserted = found < 0;
    if (found >= 0) return found;
    if (this.freeIds.length === 0 && this.nextId === this.capacity) this.grow();
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.nextId++;
    this.keys[2 * id] = this.hi;
    this.keys[2 * id + 1] = this.lo;
    this.index.place(this.keys, id);
    this.size++;
    return id;
  }

  inserted = false;

  /** Frees a live id; its key is gone from the table. */
  delete(id: number): void {
    if (this.old !== null) this.moveSome(MOVE_PER_CALL);
    const at = this.index.slotOfId(this.keys, id);
    if (at >= 0) this.index.remove(this.keys, at);
    else {
      // Not moved yet: a tombstone, so no probe run of the old index shifts across `moved`.
      const was = this.old!.slotOfId(this.keys, id);
      this.old!.slots[was] = GONE;
    }
    this.freeIds.push(id);
    this.size--;
  }

  private parse(key: string): void {
    const hi = key.length === 16 ? hexWord(key, 0) : -1;
    const lo = hi >= 0 ? hexWord(key, 8) : -1;
    if (lo >= 0) {
      this.hi = hi;
      this.lo = lo;
    } else {
      this.hi = fnv(key, 0x811c9dc5);
      this.lo = fnv(key, 0x050c5d1f);
    }
  }

  private findParsed(): number {
    const { hi, lo, keys } = this;
    const at = this.index.slotOf(keys, hi, lo);
    if (at >= 0) return this.index.slots[at] & this.index.idMask;
    const old = this.old;
    if (old === null) return -1;
    // Below `moved` the old index's slots are copies: an id there lives in the new one, or is gone.
    const was = old.slotOf(keys, hi, lo);
    return was >= this.moved ? old.slots[was] & old.idMask : -1;
  }

  /** Doubles the ids; the index moves to one sized for them over the next calls (moveSome). */
  private grow(): void {
    if (this.old !== null) this.moveSome(Infinity); // a growth still under way finishes first
    const capacity = this.capacity * 2;
    const keys = new Uint32Array(2 * capacity);
    keys.set(this.keys);
    this.keys = keys;
    this.capacity = capacity;
    this.old = this.index;
    this.moved = 0;
    this.index = new SlotIndex(capacity);
    this.onGrow(capacity);
  }

  private moveSome(budget: number): void {
    const old = this.old!;
    const end = Math.min(old.slotCount, this.moved + budget);
    for (let i = this.moved; i < end; i++) {
      const v = old.slots[i];
      if (v >= 0) this.index.place(this.keys, v & old.idMask);
    }
    this.moved = end;
    if (end === old.slotCount) this.old = null;
  }
}
