/**
 * One contender's run, reduced to the numbers the report compares — over the requests that arrived
 * in the measure window (the rest warm the caches up or drain the cluster):
 * - TTFT and end-to-end latency (ms): mean, p50, p90, p99;
 * - throughput: measured requests and their output tokens per second of window;
 * - token hit rate = Σ cached prompt tokens / Σ prompt tokens (vLLM's prefix-cache hit counters);
 *   request hit rate = requests with any cached token / requests;
 * - stale-route rate = stale routes / routes that claimed a hit (the replica held fewer of the
 *   claimed blocks at submit); also the part of them whose missing blocks were being computed by a
 *   request already running on that replica (a burst on a new prefix — the hit still comes);
 * - load imbalance = max / mean busy time over replicas within the window; utilisation = mean busy
 *   time / window length (a replica is busy while it runs steps). With continuous batching a replica
 *   that always has a decode running is 100% busy whatever its batch, so busy time stops telling
 *   replicas apart under load; hence also the in-flight imbalance: max / mean over replicas of the
 *   time-averaged number of requests on the replica (arrived, not finished) within the window —
 *   the load signal the routers balance on;
 * - requests per replica within the window (min, max, mean) and idle replicas (none served);
 * - decision overhead (µs, wall clock) p50 / p99.
 */
import type { RunResult } from "../des/simulate";
import { imbalance, summarize, type Summary } from "./stats";

export interface RunSummary {
  readonly contender: string;
  readonly requests: number;
  readonly skipped: number;
  readonly ttftMs: Summary;
  readonly e2eMs: Summary;
  readonly throughputRps: number;
  readonly outputTokensPerS: number;
  readonly tokenHitRate: number;
  readonly requestHitRate: number;
  readonly hitRoutes: number;
  readonly staleRoutes: number;
  readonly staleRate: number;
  readonly staleInFlightRoutes: number;
  readonly guardTrips: number;
  readonly busyMs: readonly number[];
  readonly loadImbalance: number;
  /** Time-averaged requests in flight per replica within the window. */
  readonly meanInFlight: readonly number[];
  readonly inFlightImbalance: number;
  /** Measured requests each replica served. */
  readonly requestsPerReplica: { readonly min: number; readonly max: number; readonly mean: number };
  /** Replicas that served no measured request. */
  readonly idleReplicas: number;
  readonly utilisation: number;
  readonly decisionUs: Summary;
  readonly windowS: number;
  readonly wallS: number;
}

export function summarizeRun(run: RunResult): RunSummary {
  const r = run.records.filter((x) => x.measured);
  let prompt = 0;
  let cached = 0;
  let output = 0;
  let hitRequests = 0;
  let hitRoutes = 0;
  let stale = 0;
  let staleInFlight = 0;
  let guardTrips = 0;
  for (const x of r) {
    prompt += x.promptTokens;
    cached += x.cachedTokens;
    output += x.outputTokens;
    if (x.cachedTokens > 0) hitRequests++;
    if (x.claimedBlocks > 0) hitRoutes++;
    if (x.stale) stale++;
    if (x.staleInFlight) staleInFlight++;
    if (x.guardTripped) guardTrips++;
  }
  const windowMs = run.window.untilMs - run.window.fromMs;
  const seconds = windowMs / 1000;
  const inFlightMs = new Map<string, number>(run.busyMs.map((_, i) => [`r${i}`, 0]));
  for (const x of run.records) {
    const overlap = Math.min(x.finishMs, run.window.untilMs) - Math.max(x.arrivalMs, run.window.fromMs);
    if (overlap > 0) inFlightMs.set(x.worker, (inFlightMs.get(x.worker) ?? 0) + overlap);
  }
  const meanInFlight = [...inFlightMs.values()].map((v) => (windowMs > 0 ? v / windowMs : 0));
  const served = new Map<string, number>(run.busyMs.map((_, i) => [`r${i}`, 0]));
  for (const x of r) served.set(x.worker, (served.get(x.worker) ?? 0) + 1);
  const counts = [...served.values()];
  const meanBusy = run.windowBusyMs.reduce((s, v) => s + v, 0) / Math.max(1, run.windowBusyMs.length);
  return {
    contender: run.contender,
    requests: r.length,
    skipped: run.skipped,
    ttftMs: summarize(r.map((x) => x.firstTokenMs - x.arrivalMs)),
    e2eMs: summarize(r.map((x) => x.finishMs - x.arrivalMs)),
    throughputRps: seconds > 0 ? r.length / seconds : NaN,
    outputTokensPerS: seconds > 0 ? output / seconds : NaN,
    tokenHitRate: prompt > 0 ? cached / prompt : 0,
    requestHitRate: r.length > 0 ? hitRequests / r.length : 0,
    hitRoutes,
    staleRoutes: stale,
    staleRate: hitRoutes > 0 ? stale / hitRoutes : 0,
    staleInFlightRoutes: staleInFlight,
    guardTrips,
    busyMs: run.windowBusyMs,
    loadImbalance: imbalance(run.windowBusyMs),
    meanInFlight,
    inFlightImbalance: imbalance(meanInFlight),
    requestsPerReplica: { min: Math.min(...counts), max: Math.max(...counts), mean: counts.reduce((a, b) => a + b, 0) / Math.max(1, counts.length) },
    idleReplicas: counts.filter((c) => c === 0).length,
    utilisation: windowMs > 0 ? meanBusy / windowMs : NaN,
    decisionUs: summarize(r.map((x) => x.decisionUs)),
    windowS: seconds,
    wallS: run.wallMs / 1000,
  };
}
