/**
 * Recency order over block ids: a doubly linked list in one Int32Array (8 B per id: links[2i] the
 * older neighbour, links[2i + 1] the newer, side by side so an unlink reads one cache line per id),
 * oldest first. O(1) push, unlink and touch; eviction takes the oldest.
 */
const NONE = -1;

export class RecencyList {
  private links: Int32Array;
  /** Oldest id, or -1 when empty. */
  oldest = NONE;
  private newest = NONE;

  constructor(capacity: number) {
    this.links = new Int32Array(2 * capacity);
  }

  grow(capacity: number): void {
    const links = new Int32Array(2 * capacity);
    links.set(this.links);
    this.links = links;
  }

  /** Links an unlinked id as the newest. */
  push(id: number): void {
    const links = this.links;
    links[2 * id] = this.newest;
    links[2 * id + 1] = NONE;
    if (this.newest === NONE) this.oldest = id;
    else links[2 * this.newest + 1] = id;
    this.newest = id;
  }

  unlink(id: number): void {
    const links = this.links;
    const p = links[2 * id];
    const n = links[2 * id + 1];
    if (p === NONE) this.oldest = n;
    else links[2 * p + 1] = n;
    if (n === NONE) this.newest = p;
    else links[2 * n] = p;
  }

  /** Links an unlinked id just older than the linked id `newer`. */
  insertOlderThan(id: number, newer: number): void {
    const links = this.links;
    const older = links[2 * newer];
    links[2 * id] = older;
    links[2 * id + 1] = newer;
    links[2 * newer] = id;
    if (older === NONE) this.oldest = id;
    else links[2 * older + 1] = id;
  }

  /** Links an unlinked id as the oldest. */
  pushOldest(id: number): void {
    const links = this.links;
    links[2 * id] = NONE;
    links[2 * id + 1] = this.oldest;
    if (this.oldest === NONE) this.newest = id;
    else links[2 * this.oldest] = id;
    this.oldest = id;
  }

  /** Makes a linked id the newest. */
  touch(id: number): void {
    if (id === this.newest) return;
    this.unlink(id);
    this.push(id);
  }
}
