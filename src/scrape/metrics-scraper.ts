/**
 * Edge adapter: scrapes every worker's vLLM /metrics on a timer and hands each parsed sample to
 * the load board (routing/load/load-board.ts). Decisions never wait for it: they read the latest
 * sample, and a sample older than routing.load.staleAfterMs is ignored there.
 *
 * At most one scrape per worker is in flight; a scrape that does not answer within timeoutMs is
 * aborted and counted as a failure. A sample is stamped with the time its request was sent (it can
 * show nothing routed after that). Failures are reported to `onFailure` on every attempt (metrics)
 * and to `onStateChange` only when a worker goes from answering to failing or back (logs).
 * Parameters: intervalMs 100, timeoutMs 250 (routing.load.*).
 */
import type { WorkerSample } from "../routing/load/load-board";
import type { WorkerId } from "../state/cache-index";
import { parseVllmMetrics } from "./vllm-metrics";

export interface ScrapeTarget {
  readonly id: WorkerId;
  readonly url: string;
}

export interface MetricsScraperOptions {
  readonly targets: readonly ScrapeTarget[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Monotonic ms, the clock decisions use. */
  readonly now: () => number;
  readonly onSample: (worker: WorkerId, sample: WorkerSample, latencyMs: number) => void;
  readonly onFailure?: (worker: WorkerId, error: string) => void;
  readonly onStateChange?: (worker: WorkerId, failing: boolean, error: string | null) => void;
}

/** Longest exposition read; vLLM's is tens of KiB. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export class MetricsScraper {
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<WorkerId>();
  private readonly failing = new Set<WorkerId>();
  private stopped = false;

  constructor(private readonly options: MetricsScraperOptions) {}

  start(): void {
    if (this.timer || this.stopped) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Workers whose last scrape failed. */
  get failingWorkers(): ReadonlySet<WorkerId> {
    return this.failing;
  }

  private tick(): void {
    for (const target of this.options.targets) {
      if (this.inFlight.has(target.id)) continue;
      this.inFlight.add(target.id);
      void this.scrape(target).finally(() => this.inFlight.delete(target.id));
    }
  }

  private async scrape(target: ScrapeTarget): Promise<void> {
    const { now, timeoutMs } = this.options;
    const requestedAtMs = now();
    let error: string;
    try {
      const res = await fetch(target.url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "text/plain" } });
      if (!res.ok) error = `HTTP ${res.status}`;
      else {
        const length = Number(res.headers.get("content-length") ?? 0);
        if (length > MAX_BODY_BYTES) error = `exposition of ${length} bytes is over ${MAX_BODY_BYTES}`;
        else {
          const parsed = parseVllmMetrics(await res.text());
          if (parsed.ok) {
            if (this.stopped) return;
            this.options.onSample(target.id, { ...parsed.sample, requestedAtMs }, now() - requestedAtMs);
            this.markHealthy(target.id);
            return;
          }
          error = parsed.error;
        }
      }
    } catch (err) {
      error = err instanceof Error && err.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : errorText(err);
    }
    if (this.stopped) return;
    this.options.onFailure?.(target.id, error);
    if (!this.failing.has(target.id)) {
      this.failing.add(target.id);
      this.options.onStateChange?.(target.id, true, error);
    }
  }

  private markHealthy(worker: WorkerId): void {
    if (this.failing.delete(worker)) this.options.onStateChange?.(worker, false, null);
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}
