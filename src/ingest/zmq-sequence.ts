/**
 * Sequence bookkeeping for one vLLM publisher (one engine / dp rank: vLLM offsets the port per
 * rank, so each endpoint has its own counter). Pure: the subscriber asks, then acts.
 *
 * vLLM numbers batches 0, 1, 2, … per publisher (`itertools.count()` in ZmqEventPublisher), from 0
 * again when the engine restarts. Two watermarks:
 *   live    — the last seq seen on the PUB/SUB stream. ZMQ delivers one publisher's messages in
 *             order without duplicates, so a live seq below it means a new publisher (restart).
 *   applied — the last seq whose batch we applied (live or replayed). Replay may run ahead of the
 *             live stream, so live messages at or below it are duplicates, not restarts.
 * Residual blind spot: a restart whose first message we see already numbered above `live` looks
 * like a gap; the replay that follows then reads the new engine's buffer.
 */
export type LiveVerdict =
  | { readonly kind: "first" } // nothing seen yet, or just reset
  | { readonly kind: "next" }
  | { readonly kind: "duplicate" }
  | { readonly kind: "gap"; readonly from: number; readonly to: number } // missing from…to inclusive
  | { readonly kind: "restart"; readonly previous: number };

export class SequenceTracker {
  private live: number | null = null;
  private appliedSeq: number | null = null;

  /** Classifies a seq from the live stream and records it as seen. */
  observeLive(seq: number): LiveVerdict {
    const live = this.live;
    this.live = seq;
    if (live === null) return { kind: "first" };
    if (seq < live) {
      this.appliedSeq = null; // a new stream: nothing of it applied yet
      return { kind: "restart", previous: live };
    }
    if (seq === live) return { kind: "duplicate" };
    const applied = this.appliedSeq ?? -1;
    if (seq <= applied) return { kind: "duplicate" };
    if (seq === applied + 1) return { kind: "next" };
    return { kind: "gap", from: applied + 1, to: seq - 1 };
  }

  /** Records that the batch numbered `seq` was applied (or deliberately skipped past). */
  markApplied(seq: number): void {
    if (this.appliedSeq === null || seq > this.appliedSeq) this.appliedSeq = seq;
  }

  /** The last applied seq, or null before any. */
  applied(): number | null {
    return this.appliedSeq;
  }

  /** Forgets the applied watermark (restart); the live watermark stays where observeLive put it. */
  resetApplied(): void {
    this.appliedSeq = null;
  }

  /** Forgets both watermarks (the publisher went away): the next seq starts a new stream ("first"). */
  reset(): void {
    this.live = null;
    this.appliedSeq = null;
  }
}
