/**
 * A counting semaphore shared by all tokenizer threads (a SharedArrayBuffer cell, Atomics), that
 * keeps bulk encoding from filling libuv's thread pool. Hugging Face's encoder runs on that pool
 * (4 threads by default, first come first served): without a bound, two cold 32k-token prompts
 * queue enough chunks to make the next request's three-word turn wait for all of them. Bulk batches
 * take a permit (at most `limit` run at once); small ones never wait, so some pool threads are
 * always left for them.
 */

/** Batches of fewer characters than this are small: they skip the gate. */
export const BULK_CHARS = 4096;

export interface BulkGateShare {
  readonly cells: SharedArrayBuffer;
  readonly limit: number;
}

type WaitAsync = (typed: Int32Array, index: number, value: number) => { async: boolean; value: Promise<unknown> | string };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

export class BulkGate {
  private readonly inUse: Int32Array;

  constructor(private readonly share: BulkGateShare) {
    this.inUse = new Int32Array(share.cells);
  }

  /** A gate for `limit` bulk batches at once, to share with the threads (structured-cloneable). */
  static share(limit: number): BulkGateShare {
    return { cells: new SharedArrayBuffer(4), limit: Math.max(1, Math.floor(limit)) };
  }

  /** Runs `work` holding a permit when `chars` make it bulk. */
  async run<T>(chars: number, work: () => Promise<T>): Promise<T> {
    if (chars < BULK_CHARS) return work();
    await this.acquire();
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private async acquire(): Promise<void> {
    for (;;) {
      const held = Atomics.load(this.inUse, 0);
      if (held < this.share.limit) {
        if (Atomics.compareExchange(this.inUse, 0, held, held + 1) === held) return;
        continue;
      }
      if (waitAsync) {
        const waited = waitAsync(this.inUse, 0, held);
        if (!waited.async) continue;
        // A pending waitAsync does not keep the event loop alive: a thread whose only work is this
        // wait (one still loading, probing its encoder) would exit mid-wait with code 0.
        const keepAlive = setInterval(() => undefined, 1 << 30);
        try {
          await waited.value;
        } finally {
          clearInterval(keepAlive);
        }
      } else await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  private release(): void {
    Atomics.sub(this.inUse, 0, 1);
    Atomics.notify(this.inUse, 0, 1);
  }
}
