/**
 * Speculative entries' expiry: an exact map (entry code → expiry ms) and a queue of codes bucketed
 * by expiry second, so a sweep touches only buckets that are due — O(entries that expire),
 * never the whole index. A code is queued again when its expiry is extended; the map is the truth
 * and a queued code whose entry is gone or extended is skipped.
 */
const BUCKET_MS = 1000;

export class ExpiryQueue {
  private readonly expiry = new Map<number, number>();
  private readonly buckets = new Map<number, number[]>();

  get size(): number {
    return this.expiry.size;
  }

  get(code: number): number | undefined {
    return this.expiry.get(code);
  }

  set(code: number, at: number): void {
    this.expiry.set(code, at);
    const bucket = Math.floor(at / BUCKET_MS);
    const list = this.buckets.get(bucket);
    if (list) list.push(code);
    else this.buckets.set(bucket, [code]);
  }

  delete(code: number): void {
    this.expiry.delete(code);
  }

  /** Calls `drop` for every entry with expiry ≤ now; reads only buckets that are (partly) due. */
  sweep(now: number, drop: (code: number) => void): void {
    for (const [bucket, codes] of this.buckets) {
      if (bucket * BUCKET_MS > now) continue;
      let kept = 0;
      for (const code of codes) {
        const at = this.expiry.get(code);
        if (at === undefined) continue;
        if (at <= now) drop(code);
        else if (Math.floor(at / BUCKET_MS) === bucket) codes[kept++] = code; // the bucket is only partly due
      }
      if (kept === 0) this.buckets.delete(bucket);
      else codes.length = kept;
    }
  }

  clear(): void {
    this.expiry.clear();
    this.buckets.clear();
  }
}
