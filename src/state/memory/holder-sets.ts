/**
 * Which holder slots hold each block, and how: one uint32 per block. A block with one holder keeps
 * it inline (slot + 1, and a flag for speculative); with more, the uint32 points at a set in a
 * shared pool of bitsets — `words` words of confirmed bits, then `words` of speculative bits. A
 * slot never has both bits. The pool widens (one pass over the pool) when slots outgrow it.
 */
export const MULTI = 0x80000000;
export const SPEC = 0x40000000;
export const SLOT_BITS = 0x3fffffff;

export const enum Held {
  None = 0,
  Confirmed = 1,
  Speculative = 2,
}

export class HolderSets {
  /** Per block id: 0 = no holder; inline (slot + 1) | SPEC?; or MULTI | set index. */
  holder: Uint32Array;
  /** Bitset words per kind; every set is 2 × words long. */
  words = 1;
  pool = new Uint32Array(64);
  private poolNext = 0;
  private poolFree: number[] = [];

  constructor(capacity: number) {
    this.holder = new Uint32Array(capacity);
  }

  grow(capacity: number): void {
    const holder = new Uint32Array(capacity);
    holder.set(this.holder);
    this.holder = holder;
  }

  /** Makes room for slots below `slots`. */
  widen(slots: number): void {
    const words = Math.ceil(slots / 32);
    if (words <= this.words) return;
    const pool = new Uint32Array(Math.max(64, this.poolNext * 2 * words));
    for (let set = 0; set < this.poolNext; set++) {
      pool.set(this.pool.subarray(set * 2 * this.words, set * 2 * this.words + this.words), set * 2 * words);
      pool.set(this.pool.subarray(set * 2 * this.words + this.words, (set + 1) * 2 * this.words), set * 2 * words + words);
    }
    this.pool = pool;
    this.words = words;
  }

  state(id: number, slot: number): Held {
    const v = this.holder[id];
    if (v === 0) return Held.None;
    if ((v & MULTI) === 0) {
      if ((v & SLOT_BITS) - 1 !== slot) return Held.None;
      return v & SPEC ? Held.Speculative : Held.Confirmed;
    }
    const base = (v & ~MULTI) * 2 * this.words + (slot >>> 5);
    const bit = 1 << (slot & 31);
    if (this.pool[base] & bit) return Held.Confirmed;
    if (this.pool[base + this.words] & bit) return Held.Speculative;
    return Held.None;
  }

  /** Sets how `slot` holds block `id` (None removes it). */
  set(id: number, slot: number, held: Held): void {
    const v = this.holder[id];
    if ((v & MULTI) === 0) {
      const only = v === 0 ? -1 : (v & SLOT_BITS) - 1;
      if (only === -1 || only === slot) {
        this.holder[id] = held === Held.None ? 0 : (slot + 1) | (held === Held.Speculative ? SPEC : 0);
        return;
      }
      if (held === Held.None) return;
      const set = this.allocate();
      this.holder[id] = (MULTI | set) >>> 0;
      this.put(set, only, v & SPEC ? Held.Speculative : Held.Confirmed);
      this.put(set, slot, held);
      return;
    }
    const set = v & ~MULTI;
    this.put(set, slot, held);
    if (held === Held.None) this.shrink(id, set);
  }

  /** Calls fn for each holder of block `id`. */
  forEach(id: number, fn: (slot: number, held: Held) => void): void {
    const v = this.holder[id];
    if (v === 0) return;
    if ((v & MULTI) === 0) {
      fn((v & SLOT_BITS) - 1, v & SPEC ? Held.Speculative : Held.Confirmed);
      return;
    }
    const base = (v & ~MULTI) * 2 * this.words;
    for (let w = 0; w < this.words; w++) {
      for (let kind = 0; kind < 2; kind++) {
        let bits = this.pool[base + w + kind * this.words];
        while (bits !== 0) {
          const low = bits & -bits;
          fn(w * 32 + 31 - Math.clz32(low), kind === 0 ? Held.Confirmed : Held.Speculative);
          bits ^= low;
        }
      }
    }
  }

  /** Drops every holder of block `id`. */
  clear(id: number): void {
    const v = this.holder[id];
    if (v & MULTI) this.release(v & ~MULTI);
    this.holder[id] = 0;
  }

  private put(set: number, slot: number, held: Held): void {
    const base = set * 2 * this.words + (slot >>> 5);
    const bit = 1 << (slot & 31);
    this.pool[base] &= ~bit;
    this.pool[base + this.words] &= ~bit;
    if (held === Held.Confirmed) this.pool[base] |= bit;
    else if (held === Held.Speculative) this.pool[base + this.words] |= bit;
  }

  /** Back to inline (or to nothing) once a set is down to one holder. */
  private shrink(id: number, set: number): void {
    const base = set * 2 * this.words;
    let count = 0;
    let slot = -1;
    let spec = false;
    for (let i = 0; i < 2 * this.words && count < 2; i++) {
      const bits = this.pool[base + i];
      if (bits === 0) continue;
      count += bits & (bits - 1) ? 2 : 1;
      slot = (i % this.words) * 32 + 31 - Math.clz32(bits);
      spec = i >= this.words;
    }
    if (count >= 2) return;
    this.release(set);
    this.holder[id] = count === 0 ? 0 : (slot + 1) | (spec ? SPEC : 0);
  }

  private allocate(): number {
    const set = this.poolFree.length > 0 ? this.poolFree.pop()! : this.poolNext++;
    const end = (set + 1) * 2 * this.words;
    if (end > this.pool.length) {
      const pool = new Uint32Array(Math.max(end, this.pool.length * 2));
      pool.set(this.pool);
      this.pool = pool;
    }
    return set;
  }

  private release(set: number): void {
    this.pool.fill(0, set * 2 * this.words, (set + 1) * 2 * this.words);
    this.poolFree.push(set);
  }
}
