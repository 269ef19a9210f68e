/**
 * The discrete-event simulation's agenda: a binary min-heap ordered by (time, priority, insertion),
 * so equal-time events run in a fixed order (completions before arrivals) and the run is
 * deterministic.
 */
export interface Scheduled<T> {
  readonly atMs: number;
  /** Lower runs first among events at the same time. */
  readonly priority: number;
  readonly event: T;
}

interface Entry<T> extends Scheduled<T> {
  readonly order: number;
}

export class EventQueue<T> {
  private readonly heap: Entry<T>[] = [];
  private inserted = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Time of the earliest event; Infinity when empty. */
  peekTime(): number {
    return this.heap.length > 0 ? this.heap[0].atMs : Infinity;
  }

  push(atMs: number, priority: number, event: T): void {
    if (!Number.isFinite(atMs)) throw new RangeError(`event time must be finite, got ${atMs}`);
    const heap = this.heap;
    heap.push({ atMs, priority, event, order: this.inserted++ });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  pop(): Scheduled<T> | undefined {
    const heap = this.heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l], heap[m])) m = l;
        if (r < heap.length && before(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  }
}

function before<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.atMs !== b.atMs ? a.atMs < b.atMs : a.priority !== b.priority ? a.priority < b.priority : a.order < b.order;
}
