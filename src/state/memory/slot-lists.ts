/**
 * Per holder slot, the block ids it holds (4 B per entry), so clearing a slot costs O(its
 * entries). Removals leave stale ids behind (no per-entry back pointer); a list is compacted —
 * stale ids dropped, duplicates from a remove-then-add folded — once it is over twice its live
 * count, which keeps the work amortized O(1) per removal.
 */
export class SlotLists {
  private lists: Uint32Array[] = [];
  private lengths: number[] = [];

  push(slot: number, id: number, live: number, holds: (id: number) => boolean): void {
    let list = this.lists[slot];
    let length = this.lengths[slot] ?? 0;
    if (!list || length === list.length) {
      if (list && length > 2 * live + 1024) {
        length = this.compact(slot, holds);
        list = this.lists[slot];
      }
      if (!list || length === list.length) {
        const bigger = new Uint32Array(Math.max(64, length * 2));
        if (list) bigger.set(list.subarray(0, length));
        list = this.lists[slot] = bigger;
      }
    }
    list[length] = id;
    this.lengths[slot] = length + 1;
  }

  /** Hands over the slot's ids (some stale, some repeated) and forgets them. */
  take(slot: number): Uint32Array {
    const list = this.lists[slot];
    const length = this.lengths[slot] ?? 0;
    this.lists[slot] = new Uint32Array(0);
    this.lengths[slot] = 0;
    return list ? list.subarray(0, length) : new Uint32Array(0);
  }

  private compact(slot: number, holds: (id: number) => boolean): number {
    const list = this.lists[slot];
    const sorted = list.subarray(0, this.lengths[slot]).sort();
    let kept = 0;
    for (let i = 0; i < sorted.length; i++) {
      const id = sorted[i];
      if ((kept === 0 || list[kept - 1] !== id) && holds(id)) list[kept++] = id;
    }
    this.lengths[slot] = kept;
    return kept;
  }
}
