/**
 * Recency order over block ids: a doubly linked list in two Int32Arrays (8 B per id), oldest
 * first. O(1) push, unlink and touch; eviction takes the oldest.
 */
const NONE = -1;

export class RecencyList {
  private prev: Int32Array;
  private next: Int32Array;
  /** Oldest id, or -1 when empty. */
  oldest = NONE;
  private newest = NONE;

  constructor(capacity: number) {
    this.prev = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
  }

  grow(capacity: number): void {
    const prev = new Int32Array(capacity);
    const next = new Int32Array(capacity);
    prev.set(this.prev);
    next.set(this.next);
    this.prev = prev;
    this.next = next;
  }

  /** Links an unlinked id as the newest. */
  push(id: number): void {
    this.prev[id] = this.newest;
    this.next[id] = NONE;
    if (this.newest === NONE) this.oldest = id;
    else this.next[this.newest] = id;
    this.newest = id;
  }

  unlink(id: number): void {
    const p = this.prev[id];
    const n = this.next[id];
    if (p === NONE) this.oldest = n;
    else this.next[p] = n;
    if (n === NONE) this.newest = p;
    else this.prev[n] = p;
  }

  /** Makes a linked id the newest. */
  touch(id: number): void {
    if (id === this.newest) return;
    this.unlink(id);
    this.push(id);
  }
}
