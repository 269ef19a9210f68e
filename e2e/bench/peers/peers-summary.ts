/**
 * One router's run reduced to the row of the peers table. The token hit rate and the requests per
 * replica come from the replicas' own /metrics counters (vLLM's names: vllm:prefix_cache_hits_total
 * / vllm:prefix_cache_queries_total, vllm:request_success_total), read after the run; the
 * responses' usage.prompt_tokens_details.cached_tokens give a second hit rate as a cross-check.
 * TTFT is the replicas' simulated TTFT (model ms). The router's added latency is wall ms: what the
 * client waited minus what the replica spent.
 */
import { imbalance, summarize } from "../../../src/bench/metrics/stats";
import type { PeerRecord } from "./peers-driver";
import type { TreeUsage } from "./proc-stats";

export interface ReplicaCounters {
  readonly id: string;
  readonly prefixQueryTokens: number;
  readonly prefixHitTokens: number;
  readonly requests: number;
}

export interface Percentiles {
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

export interface ProcessUsage {
  readonly role: string;
  /** CPU seconds during the workload, and over the process's life. */
  readonly cpuS: number;
  readonly totalCpuS: number;
  readonly peakRssMiB: number;
}

export interface PeerRow {
  readonly router: string;
  readonly setting: string;
  readonly ttftMs: Percentiles;
  /** Σ hits / Σ queries over the replicas' vllm:prefix_cache_* counters. */
  readonly tokenHitRate: number;
  /** Σ cached_tokens / Σ prompt_tokens over the responses (should equal tokenHitRate). */
  readonly usageHitRate: number;
  readonly requests: number;
  readonly failed: number;
  readonly requestsPerReplica: { readonly min: number; readonly max: number; readonly byReplica: Readonly<Record<string, number>> };
  readonly addedLatencyMs: Percentiles;
  /** The router's processes together (Envoy included when it is in front of prefix-router). */
  readonly cpuS: number;
  readonly peakRssMiB: number;
  readonly processes: readonly ProcessUsage[];
  /** Responses whose prompt_tokens differ from the workload's: the router changed the prompt. */
  readonly promptMismatches: number;
  /** Requests the router did not place (prefix-router behind the ext_proc client: least-request fallback). */
  readonly fallbacks: number;
  /** prefix-router's decisions ("hit", "miss", "miss/load-guard", …), counted, and its own decision time (µs). */
  readonly decisions: Readonly<Record<string, number>>;
  readonly decisionUs: Percentiles | null;
  /** How late requests left against the scaled clock (wall ms): p99 and max. */
  readonly lateMs: { readonly p99: number; readonly max: number };
  readonly firstErrors: readonly string[];
  readonly wallS: number;
  /** The machine's 1-minute load average when the run started (other work on the cores). */
  readonly loadAverage: number;
  /** Replicas' busy time (running engine steps) over the run's length (model time): mean, and max / mean. */
  readonly utilisation: number;
  readonly busyImbalance: number;
}

/** Sum of every sample of a metric (any labels) in Prometheus text format. */
export function sumSamples(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== "{" && rest[0] !== " ") continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

export async function scrapeReplica(id: string, address: string): Promise<ReplicaCounters> {
  const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${address}/metrics: HTTP ${res.status}`);
  const text = await res.text();
  return {
    id,
    prefixQueryTokens: sumSamples(text, "vllm:prefix_cache_queries_total"),
    prefixHitTokens: sumSamples(text, "vllm:prefix_cache_hits_total"),
    requests: sumSamples(text, "vllm:request_success_total"),
  };
}

const mean = (xs: readonly number[]) => xs.reduce((s, v) => s + v, 0) / Math.max(1, xs.length);

const percentiles = (values: readonly number[]): Percentiles => {
  const s = summarize(values);
  return { mean: s.mean, p50: s.p50, p90: s.p90, p99: s.p99 };
};

export function summarizePeerRun(args: {
  readonly router: string;
  readonly setting: string;
  readonly records: readonly PeerRecord[];
  readonly counters: readonly ReplicaCounters[];
  readonly usage: readonly (TreeUsage & { readonly role: string })[];
  readonly fallbacks: number;
  readonly wallS: number;
  readonly loadAverage: number;
  readonly busyMs: readonly number[];
  readonly makespanMs: number;
}): PeerRow {
  const ok = args.records.filter((r) => r.error === null);
  const failed = args.records.filter((r) => r.error !== null);
  const queries = args.counters.reduce((s, c) => s + c.prefixQueryTokens, 0);
  const hits = args.counters.reduce((s, c) => s + c.prefixHitTokens, 0);
  const prompt = ok.reduce((s, r) => s + r.promptTokens, 0);
  const cached = ok.reduce((s, r) => s + r.cachedTokens, 0);
  const perReplica = args.counters.map((c) => c.requests);
  const decisions: Record<string, number> = {};
  for (const r of ok) if (r.decision) decisions[r.decision] = (decisions[r.decision] ?? 0) + 1;
  const decisionUs = ok.flatMap((r) => (r.decisionUs === null ? [] : [r.decisionUs]));
  const added = ok.filter((r) => r.replicaWallMs !== null).map((r) => r.clientWallMs - r.replicaWallMs!);
  const late = summarize(args.records.map((r) => r.lateMs));
  const processes = args.usage.map((u) => ({ role: u.role, cpuS: u.cpuS, totalCpuS: u.totalCpuS, peakRssMiB: u.peakRssBytes / 2 ** 20 }));
  return {
    router: args.router,
    setting: args.setting,
    ttftMs: percentiles(ok.map((r) => r.ttftMs)),
    tokenHitRate: queries > 0 ? hits / queries : 0,
    usageHitRate: prompt > 0 ? cached / prompt : 0,
    requests: args.records.length,
    failed: failed.length,
    requestsPerReplica: { min: Math.min(...perReplica), max: Math.max(...perReplica), byReplica: Object.fromEntries(args.counters.map((c) => [c.id, c.requests])) },
    addedLatencyMs: percentiles(added),
    cpuS: processes.reduce((s, p) => s + p.cpuS, 0),
    peakRssMiB: processes.reduce((s, p) => s + p.peakRssMiB, 0),
    processes,
    promptMismatches: ok.filter((r) => r.promptTokens !== r.expectedPromptTokens).length,
    fallbacks: args.fallbacks,
    decisions,
    decisionUs: decisionUs.length > 0 ? percentiles(decisionUs) : null,
    lateMs: { p99: late.p99, max: late.max },
    firstErrors: [...new Set(failed.map((r) => r.error!))].slice(0, 3),
    wallS: args.wallS,
    loadAverage: args.loadAverage,
    utilisation: mean(args.busyMs) / args.makespanMs,
    busyImbalance: imbalance(args.busyMs),
  };
}
