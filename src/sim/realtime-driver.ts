/**
 * Drives a SimReplicaEngine in real time for the HTTP simulator. Virtual (model) time runs at
 * 1/timeScale of wall time: timeScale 0.1 makes every step take a tenth of its modelled duration.
 *
 * One timer: after each tick it is set for the next thing due — the engine's next step start or a
 * result whose time has not come. A tick advances the engine to "now" (steps that started by now
 * run; the last may end in the future), forwards KV events at once (vLLM reports blocks when the
 * step that fills them is scheduled), and delivers first tokens, streamed tokens and completions
 * only once their time has come, so clients see the modelled latencies.
 */
import type { EngineKvEvent, RequestTiming, SimRequest } from "./replica-model";
import type { SimReplicaEngine } from "./replica-engine";

export interface RequestObserver {
  onFirstToken?(cachedTokens: number): void;
  /** Output tokens produced so far (streaming); called when the count grows. */
  onProgress?(outputs: number): void;
  onDone(timing: RequestTiming): void;
}

export interface RealtimeDriverOptions {
  /** Wall ms per model ms (1 = real speed, 0.1 = ten times faster). */
  readonly timeScale: number;
  readonly onKvEvents?: (events: readonly EngineKvEvent[]) => void;
  /** Wall clock in ms (injected for tests). */
  readonly wallMs?: () => number;
}

type Due = { readonly atMs: number; readonly id: string } & ({ readonly kind: "first"; readonly cachedTokens: number } | { readonly kind: "done"; readonly timing: RequestTiming });

export class RealtimeDriver {
  private readonly wallMs: () => number;
  private readonly startWall: number;
  private readonly observers = new Map<string, { obs: RequestObserver; sent: number }>();
  private due: Due[] = [];
  /** Output counts of requests the engine finished whose completion is not yet due. */
  private readonly finishing = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private kvSinks: ((events: readonly EngineKvEvent[]) => void)[] = [];

  constructor(
    readonly engine: SimReplicaEngine,
    private readonly o: RealtimeDriverOptions,
  ) {
    if (!(o.timeScale > 0)) throw new RangeError(`timeScale must be > 0, got ${o.timeScale}`);
    this.wallMs = o.wallMs ?? (() => performance.now());
    this.startWall = this.wallMs();
    if (o.onKvEvents) this.kvSinks.push(o.onKvEvents);
  }

  /** Model time now, ms since the driver started. */
  nowMs(): number {
    return (this.wallMs() - this.startWall) / this.o.timeScale;
  }

  /** Adds a consumer of the engine's KV events (reporters, publishers). */
  addKvSink(sink: (events: readonly EngineKvEvent[]) => void): void {
    this.kvSinks.push(sink);
  }

  /** Queues a request now; the observer hears about it as model time passes. Throws like engine.submit. */
  submit(request: SimRequest, observer: RequestObserver): void {
    this.engine.submit(request, this.nowMs());
    this.observers.set(request.id, { obs: observer, sent: 0 });
    this.tick();
  }

  /** Runs a tick now (after a change made to the engine directly, e.g. a prefix-cache reset). */
  poke(): void {
    this.tick();
  }

  /** Stops the timer; pending requests are never answered. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private tick(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const now = this.nowMs();
    const { engine } = this;
    engine.advanceTo(now);
    const events = engine.takeKvEvents();
    if (events.length > 0) for (const sink of this.kvSinks) sink(events);
    for (const f of engine.takeFirstTokens()) this.due.push({ kind: "first", atMs: f.atMs, id: f.id, cachedTokens: f.cachedTokens });
    for (const t of engine.takeCompleted()) {
      this.due.push({ kind: "done", atMs: t.finishMs, id: t.id, timing: t });
      this.finishing.set(t.id, t.outputTokens);
    }
    this.deliver(now);
    const next = this.due.reduce((min, d) => Math.min(min, d.atMs), engine.nextStepMs() ?? Infinity);
    if (next === Infinity) return;
    this.timer = setTimeout(() => this.tick(), Math.max(0, (next - this.nowMs()) * this.o.timeScale));
  }

  private deliver(now: number): void {
    const ready = this.due.filter((d) => d.atMs <= now).sort((a, b) => a.atMs - b.atMs || (a.kind === "first" ? -1 : 1));
    this.due = this.due.filter((d) => d.atMs > now);
    for (const d of ready) {
      const entry = this.observers.get(d.id);
      if (!entry) continue;
      if (d.kind === "first") {
        entry.obs.onFirstToken?.(d.cachedTokens);
      } else {
        this.observers.delete(d.id);
        this.finishing.delete(d.id);
        entry.obs.onDone(d.timing);
      }
    }
    for (const [id, entry] of this.observers) {
      if (!entry.obs.onProgress) continue;
      // Finished in the engine but not yet due: only its last token (the last step's) is still ahead.
      const finishing = this.finishing.get(id);
      const outputs = finishing !== undefined ? finishing - 1 : (this.engine.outputsBy(id, now) ?? 0);
      if (outputs > entry.sent) {
        entry.sent = outputs;
        entry.obs.onProgress(outputs);
      }
    }
  }
}
