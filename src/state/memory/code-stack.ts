/**
 * A stack of entry codes (doubles) in typed-array chunks: the expiry queue's buckets. A JS array
 * of doubles lives on V8's heap, where each growth copies it and every code a bucket keeps for the
 * speculative TTL is promoted to the old generation (a sustained stream of new 32k prompts queues
 * 2,048 codes each: ~2.8 MB a second, which drove the event loop's mark-compacts); chunks live
 * outside it and are never copied. Chunks grow from FIRST_CHUNK to MAX_CHUNK codes, so a bucket of
 * a few codes stays small.
 */
const FIRST_CHUNK = 64;
const MAX_CHUNK = 8192;

export class CodeStack {
  private readonly chunks: Float64Array[] = [];
  /** Codes in the last chunk. */
  private top = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(code: number): void {
    let last = this.chunks[this.chunks.length - 1];
    if (last === undefined || this.top === last.length) {
      last = new Float64Array(last === undefined ? FIRST_CHUNK : Math.min(MAX_CHUNK, 2 * last.length));
      this.chunks.push(last);
      this.top = 0;
    }
    last[this.top++] = code;
    this.count++;
  }

  /** The last code pushed, removed; undefined when empty. */
  pop(): number | undefined {
    if (this.count === 0) return undefined;
    if (this.top === 0) {
      this.chunks.pop();
      this.top = this.chunks[this.chunks.length - 1].length;
    }
    this.count--;
    return this.chunks[this.chunks.length - 1][--this.top];
  }
}
