/**
 * Speculative entries' expiry: an exact table (entry code → expiry ms) and a queue of codes bucketed
 * by expiry second, so a sweep touches only buckets that are due — O(entries that expire),
 * never the whole index. The table is the truth: a queued code whose entry is gone or now expires
 * in a later bucket is skipped there.
 *
 * Codes (block id × 65,536 + slot) exceed 2^31, so a Map would box every key and value; the table
 * is open addressing over two Float64Arrays (16 B per slot, load ≤ 1/2, backward-shift deletion),
 * and an extended expiry is queued again only when it moves to another bucket (a chain recorded
 * by every request re-queues its codes once a second, not once per request). It doubles by moving
 * its entries a few per call (MOVE_PER_CALL), never all at once.
 */
import { mix32 } from "../../common/mix32";
import { CodeStack } from "./code-stack";

const BUCKET_MS = 1000;
const EMPTY = -1;
/** A code deleted from a table being migrated away from (probes pass it; it is never moved). */
const GONE = -2;
const INITIAL_SLOTS = 1024;
const TWO_32 = 4294967296;
/**
 * Slots of the old table moved per set() or delete() while the table grows: at least 2 keep the
 * move ahead of the next growth (the new table holds twice as many; it grows again only once the
 * entries have doubled), 4 finish it within 1/4 as many calls as the old table has slots.
 */
const MOVE_PER_CALL = 4;

const bucketOf = (at: number) => Math.floor(at / BUCKET_MS);

/** Open addressing over two Float64Arrays (code, expiry), linear probing, power-of-two size. */
class CodeTable {
  readonly codes: Float64Array;
  readonly expiries: Float64Array;
  readonly mask: number;

  constructor(slots: number) {
    this.codes = new Float64Array(slots).fill(EMPTY);
    this.expiries = new Float64Array(slots);
    this.mask = slots - 1;
  }

  home(code: number): number {
    return mix32((code >>> 0) ^ Math.imul(Math.floor(code / TWO_32), 0x9e3779b1)) & this.mask;
  }

  /** The slot holding `code`, or the empty slot where it would go. */
  find(code: number): number {
    let at = this.home(code);
    for (;;) {
      const c = this.codes[at];
      if (c === code || c === EMPTY) return at;
      at = (at + 1) & this.mask;
    }
  }

  /** Empties slot `at` by backward-shift deletion (a table without GONE slots only). */
  remove(at: number): void {
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
}

export class ExpiryQueue {
  private table = new CodeTable(INITIAL_SLOTS);
  /**
   * While the table grows: the one it replaces, whose slots below `moved` are in `table` now (a
   * growth moves MOVE_PER_CALL slots per call instead of all at once: at a million entries a
   * rehash in one piece held the event loop for 45 ms). A code lives in one of the two.
   */
  private old: CodeTable | null = null;
  private moved = 0;
  private count = 0;
  private readonly buckets = new Map<number, CodeStack>();

  get size(): number {
    return this.count;
  }

  /** Whether a growth is still moving entries (for tests). */
  get growing(): boolean {
    return this.old !== null;
  }

  get(code: number): number | undefined {
    const at = this.table.find(code);
    if (this.table.codes[at] === code) return this.table.expiries[at];
    const was = this.inOld(code);
    return was < 0 ? undefined : this.old!.expiries[was];
  }

  set(code: number, expiry: number): void {
    this.moveSome();
    let table = this.table;
    let at = table.find(code);
    if (table.codes[at] !== code) {
      const was = this.inOld(code);
      if (was >= 0) {
        table = this.old!;
        at = was;
      }
    }
    const known = table.codes[at] === code;
    if (known && bucketOf(table.expiries[at]) === bucketOf(expiry)) {
      table.expiries[at] = expiry; // already queued in that bucket
      return;
    }
    if (!known) {
      if (2 * (this.count + 1) > this.table.codes.length) {
        this.grow();
        table = this.table;
        at = table.find(code);
      }
      table.codes[at] = code;
      this.count++;
    }
    table.expiries[at] = expiry;
    const bucket = bucketOf(expiry);
    let list = this.buckets.get(bucket);
    if (list === undefined) this.buckets.set(bucket, (list = new CodeStack()));
    list.push(code);
  }

  delete(code: number): void {
    this.moveSome();
    const at = this.table.find(code);
    if (this.table.codes[at] === code) {
      this.table.remove(at);
      this.count--;
      return;
    }
    const was = this.inOld(code);
    if (was < 0) return;
    this.old!.codes[was] = GONE; // not shifted: slots below `moved` are already in the new table
    this.count--;
  }

  /**
   * A sweep of the entries with expiry ≤ now, reading only buckets that are (partly) due: each call
   * of the returned step reads at most `budget` queued codes and calls `drop` for those expired;
   * true once every due bucket has been read. Between steps the queue may change: a code extended
   * or removed meanwhile is checked against the table when read, as always.
   */
  sweep(now: number, drop: (code: number) => void): (budget: number) => boolean {
    const due = [...this.buckets.keys()].filter((bucket) => bucket * BUCKET_MS <= now);
    let kept = new CodeStack(); // codes of the bucket being read that are not due yet
    return (budget) => {
      while (due.length > 0) {
        const bucket = due[due.length - 1];
        const codes = this.buckets.get(bucket) ?? new CodeStack();
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
        kept = new CodeStack();
        due.pop();
      }
      return true;
    };
  }

  clear(): void {
    this.table = new CodeTable(INITIAL_SLOTS);
    this.old = null;
    this.moved = 0;
    this.count = 0;
    this.buckets.clear();
  }

  /** The old table's slot of `code` when it still lives there (not moved yet), else -1. */
  private inOld(code: number): number {
    const old = this.old;
    if (old === null) return -1;
    const at = old.find(code);
    return old.codes[at] === code && at >= this.moved ? at : -1;
  }

  /** Starts a growth: new entries go to a table twice the size, the current one's move over time. */
  private grow(): void {
    this.moveSome(Infinity); // a growth still under way finishes first
    this.old = this.table;
    this.moved = 0;
    this.table = new CodeTable(this.old.codes.length * 2);
  }

  private moveSome(budget = MOVE_PER_CALL): void {
    const old = this.old;
    if (old === null) return;
    const end = Math.min(old.codes.length, this.moved + budget);
    for (let i = this.moved; i < end; i++) {
      const code = old.codes[i];
      if (code === EMPTY || code === GONE) continue;
      const at = this.table.find(code);
      this.table.codes[at] = code;
      this.table.expiries[at] = old.expiries[i];
    }
    this.moved = end;
    if (end === old.codes.length) this.old = null;
  }
}
