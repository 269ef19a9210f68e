/**
 * Bounds on what all ext_proc streams together may hold: how many are open at once, and how many
 * body bytes they buffer (a full-duplex body held until its end, a buffered body while it is
 * decided). A stream over the first bound is refused (RESOURCE_EXHAUSTED: Envoy's
 * failure_mode_allow decides what happens to the request); a body over the second is routed
 * without it (fallback, reason body-buffer-full) and streamed through.
 */
export interface BodyBudget {
  /** Takes `bytes` from the budget; false (and nothing taken) when they do not fit. */
  take(bytes: number): boolean;
  give(bytes: number): void;
}

export interface StreamGateLimits {
  readonly maxConcurrentStreams: number;
  readonly maxBufferedBodyBytes: number;
}

export class StreamGate implements BodyBudget {
  private streams = 0;
  private buffered = 0;
  /** Streams refused since start (a metric). */
  refused = 0;

  constructor(private readonly limits: StreamGateLimits) {}

  /** A new stream: false when maxConcurrentStreams are open already. */
  open(): boolean {
    if (this.streams >= this.limits.maxConcurrentStreams) {
      this.refused++;
      return false;
    }
    this.streams++;
    return true;
  }

  /** A stream that open() let in has ended (once per stream). */
  close(): void {
    this.streams--;
  }

  take(bytes: number): boolean {
    if (this.buffered + bytes > this.limits.maxBufferedBodyBytes) return false;
    this.buffered += bytes;
    return true;
  }

  give(bytes: number): void {
    this.buffered -= bytes;
  }

  get openStreams(): number {
    return this.streams;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }
}
