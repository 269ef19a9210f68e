/**
 * Speculative entries' expiry: an exact table (entry code → expiry ms) and a queue of codes bucketed
 * by expiry second, so a sweep touches only buckets that are due — O(entries that expire),
 * never the whole index. The table is the truth: a queued code whose entry is gone or now expires
 * in a later bucket is skipped there.
 *
 * Codes (block id × 65,536 + slot) exceed 2^31, so a Map would box every key and value; the table
 * is open addressing over two Float64Arrays (16 B per slot, load ≤ 1/2, backward-shift deletion),
 * and an extended expiry is queued again only when it moves to another bucket (a chain recorded
 * by every request re-queues its codes once a second, not once per request).
 */
import { mix32 } from "../../common/mix32";

const BUCKET_MS = 1000;
const EMPTY = -1;
const INITIAL_SLOTS = 1024;
const TWO_32 = 4294967296;

const bucketOf = (at: number) => Math.floor(at / BUCKET_MS);

export class ExpiryQueue {
  private codes = new Float64Array(INITIAL_SLOTS).fill(EMPTY);
  private expiries = new Float64Array(INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  private count = 0;
  private readonly buckets = new Map<number, number[]>();

  get size(): number {
    return this.count;
  }

  get(code: number): number | undefined {
    const at = this.find(code);
    return this.codes[at] === EMPTY ? undefined : this.expiries[at];
  }

  set(code: number, expiry: number): void {
    let at = this.find(code);
    const known = this.codes[at] !== EMPTY;
    if (known && bucketOf(this.expiries[at]) === bucketOf(expiry)) {
      this.expiries[at] = expiry; // already queued in that bucket
      return;
    }
    if (!known) {
      if (2 * (this.count + 1) > this.codes.length) {
        this.grow();
        at = this.find(code);
      }
      this.codes[at] = code;
      this.count++;
    }
    this.expiries[at] = expiry;
    const bucket = bucketOf(expiry);
    const list = this.buckets.get(bucket);
    if (list) list.push(code);
    else this.buckets.set(bucket, [code]);
  }

  delete(code: number): void {
    const at = this.find(code);
    if (this.codes[at] === EMPTY) return;
    this.count--;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = at;
    let j = at;
    for (;;) {
      j = (j + 1) & this.mask;
      const other = this.codes[j];
      if (other === EMPTY) break;
      const home = this.home(other);
      // `other` may move into the hole only if its home is not cyclically within (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!between) {
        this.codes[hole] = other;
        this.expiries[hole] = this.expiries[j];
        hole = j;
      }
    }
    this.codes[hole] = EMPTY;
  }

  /**
   * A sweep of the entries with expiry ≤ now, reading only buckets that are (partly) due: each call
   * of the returned step reads at most `budget` queued codes and calls `drop` for those expired;
   * true once every due bucket has been read. Between steps the queue may change: a code extended
   * or removed meanwhile is checked against the table when read, as always.
   */
  sweep(now: number, drop: (code: number) => void): (budget: number) => boolean {
    const due = [...this.buckets.keys()].filter((bucket) => bucket * BUCKET_MS <= now);
    let kept: number[] = []; // codes of the bucket being read that are not due yet
    return (budget) => {
      while (due.length > 0) {
        const bucket = due[due.length - 1];
        const codes = this.buckets.get(bucket) ?? [];
        while (codes.length > 0) {
          if (budget-- <= 0) return false;
          const code = codes.pop()!;
          const at = this.get(code);
          if (at === undefined || bucketOf(at) !== bucket) continue; // gone, or queued in its own bucket
          if (at <= now) drop(code);
          else kept.push(code); // the bucket is only partly due
        }
        if (kept.length === 0) this.buckets.delete(bucket);
        else this.buckets.set(bucket, kept);
        kept = [];
        due.pop();
      }
      return true;
    };
  }

  clear(): void {
    this.codes = new Float64Array(INITIAL_SLOTS).fill(EMPTY);
    this.expiries = new Float64Array(INITIAL_SLOTS);
    this.mask = INITIAL_SLOTS - 1;
    this.count = 0;
    this.buckets.clear();
  }

  private home(code: number): number {
    return mix32((code >>> 0) ^ Math.imul(Math.floor(code / TWO_32), 0x9e3779b1)) & this.mask;
  }

  /** The slot holding `code`, or the empty slot where it would go. */
  private find(code: number): number {
    let at = this.home(code);
    for (;;) {
      const c = this.codes[at];
      if (c === code || c === EMPTY) return at;
      at = (at + 1) & this.mask;
    }
  }

  private grow(): void {
    const codes = this.codes;
    const expiries = this.expiries;
    this.codes = new Float64Array(codes.length * 2).fill(EMPTY);
    this.expiries = new Float64Array(codes.length * 2);
    this.mask = codes.length * 2 - 1;
    for (let i = 0; i < codes.length; i++) {
      if (codes[i] === EMPTY) continue;
      const at = this.find(codes[i]);
      this.codes[at] = codes[i];
      this.expiries[at] = expiries[i];
    }
  }
}
