/**
 * The router's view of each worker's load, made of two signals that exist in production:
 *
 *   ledger  — what this router routed there and believes is still queued or running
 *             (load-ledger.ts: retired by predicted times, never by when Envoy ends the stream);
 *   sample  — the worker's own vLLM /metrics (num_requests_waiting, num_requests_running,
 *             kv_cache_usage_perc, cache_config_info), scraped every ~100 ms by an edge adapter
 *             (src/scrape) and handed in with setSample(). It is the truth, and it also counts
 *             traffic from other router replicas, but it is as old as the scrape.
 *
 * Combination, per worker and term (queued prefill tokens and ms, sequences, KV tokens):
 *   load = max(ledger, sample + the ledger's work routed since the sample was requested)
 * A sample counts waiting requests, not tokens: each is valued at the mean uncached prefill of the
 * requests this router routed (running means). The max keeps whichever view sees more work: the
 * sample when other routers (or longer prompts than predicted) fill a worker, the ledger when the
 * sample is older than this router's latest decisions. A sample older than `staleAfterMs`
 * (a failed or slow scrape) is ignored: the ledger alone decides, never a blocked decision.
 * Defaults: staleAfterMs 1,000 (10 scrape intervals).
 */
import type { WorkerId } from "../../state/cache-index";
import type { WorkerAddress } from "../in-flight-tracker";
import type { WorkerLoad, WorkerView } from "../worker-view";
import { LoadLedger, type LedgerTotals, type RoutedWork } from "./load-ledger";

/** One scrape of a worker's /metrics. */
export interface WorkerSample {
  /** When the scrape was sent (the sample can show nothing routed after this), router clock ms. */
  readonly requestedAtMs: number;
  readonly running: number;
  readonly waiting: number;
  /** Fraction of KV blocks held by running requests (vllm:kv_cache_usage_perc). */
  readonly kvUsage: number;
  /** KV capacity in tokens (cache_config_info num_gpu_blocks × block_size), when reported. */
  readonly kvCapacityTokens: number | null;
}

export interface LoadBoardOptions {
  readonly staleAfterMs?: number;
}

export const DEFAULT_STALE_AFTER_MS = 1_000;

/** Running mean over the last ~`span` observations (exponential, so no window to keep). */
class RunningMean {
  private value = 0;
  private n = 0;
  constructor(private readonly span: number) {}
  observe(x: number): void {
    this.n = Math.min(this.n + 1, this.span);
    this.value += (x - this.value) / this.n;
  }
  get mean(): number {
    return this.value;
  }
}

export class LoadBoard {
  readonly ledger = new LoadLedger();
  private readonly samples = new Map<WorkerId, WorkerSample>();
  private readonly meanUncached = new RunningMean(200);
  private readonly meanPrefillMs = new RunningMean(200);
  private readonly staleAfterMs: number;

  constructor(options: LoadBoardOptions = {}) {
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  }

  setSample(worker: WorkerId, sample: WorkerSample): void {
    const previous = this.samples.get(worker);
    if (!previous || previous.requestedAtMs <= sample.requestedAtMs) this.samples.set(worker, sample);
  }

  sampleOf(worker: WorkerId): WorkerSample | undefined {
    return this.samples.get(worker);
  }

  /** Records a routing decision's work; returns the ledger id (end() it when the request's Envoy stream ends). */
  record(work: RoutedWork, nowMs: number): number {
    this.meanUncached.observe(work.uncachedTokens);
    this.meanPrefillMs.observe(work.prefillMs);
    return this.ledger.add(work, nowMs);
  }

  /** Mean uncached prompt tokens of the requests routed lately. */
  get meanUncachedTokens(): number {
    return this.meanUncached.mean;
  }

  end(id: number, streaming: boolean): void {
    this.ledger.end(id, streaming);
  }

  load(worker: WorkerId, nowMs: number): WorkerLoad {
    const own = this.ledger.totals(worker, nowMs);
    const sample = this.samples.get(worker);
    if (!sample || nowMs - sample.requestedAtMs > this.staleAfterMs) return { ...own, sampleAgeMs: sample ? nowMs - sample.requestedAtMs : null };
    const since = this.ledger.since(worker, sample.requestedAtMs, nowMs);
    const seen = sampledTotals(sample, since, this.meanUncached.mean, this.meanPrefillMs.mean, own);
    return {
      queuedTokens: Math.max(own.queuedTokens, seen.queuedTokens),
      queuedMs: Math.max(own.queuedMs, seen.queuedMs),
      running: Math.max(own.running, seen.running),
      kvTokens: Math.max(own.kvTokens, seen.kvTokens),
      sampleAgeMs: nowMs - sample.requestedAtMs,
    };
  }

  /** A frozen view of `workers` with their load, for the decision core. */
  snapshot(workers: readonly WorkerAddress[], inFlight: (worker: WorkerId) => number, nowMs: number): readonly WorkerView[] {
    return Object.freeze(workers.map((w) => Object.freeze({ id: w.id, address: w.address, inFlight: inFlight(w.id), load: Object.freeze(this.load(w.id, nowMs)) })));
  }
}

function sampledTotals(sample: WorkerSample, since: LedgerTotals, meanUncached: number, meanPrefillMs: number, own: LedgerTotals): LedgerTotals {
  return {
    queuedTokens: sample.waiting * meanUncached + since.queuedTokens,
    queuedMs: sample.waiting * meanPrefillMs + since.queuedMs,
    running: sample.running + sample.waiting + since.running,
    // Without a capacity the sample cannot be turned into tokens: keep the ledger's figure.
    kvTokens: sample.kvCapacityTokens !== null ? sample.kvUsage * sample.kvCapacityTokens + since.kvTokens : own.kvTokens,
  };
}
