/**
 * Runs every contender of a scenario over one workload on one cluster shape and gathers what the
 * report needs: per-policy summaries and TTFT distributions, the workload's statistics, its working
 * set and the single-LRU bound (both from the block-key stream in the arrival order the
 * prefix-router run realised — follow-up turns arrive a think time after completion, so arrival
 * order depends a little on the policy).
 */
import { H100_LLAMA_8B, type ReplicaConfig } from "../sim/replica-model";
import type { LoadGuard } from "../routing/policy";
import type { TieSeed } from "../routing/policies/routing-policy";
import type { ContenderName } from "./des/contenders";
import { DEFAULT_COST_MODEL, type CostModel } from "../routing/cost-model";
import { PRODUCTION_SIGNALS, simulate, type StreamEnd, type MeasureWindow, type ProgressFn, type RunResult } from "./des/simulate";
import { singleLruBound, workingSet, type LruBound, type WorkingSet } from "./metrics/cache-bound";
import { kvKeys } from "./metrics/kv-keys";
import { summarizeRun, type RunSummary } from "./metrics/run-summary";
import { cdfPoints } from "./metrics/stats";
import { buildWorkload, type WorkloadSpec } from "./workloads/build-workload";
import type { Workload } from "./workloads/workload";

export interface Scenario {
  /** Unique within a preset: names the output files. */
  readonly name: string;
  readonly workload: WorkloadSpec;
  readonly replicas: number;
  /** KV blocks per replica (H100 + Llama-3.1-8B: 27,500). */
  readonly totalBlocks: number;
  readonly window?: MeasureWindow;
  /** Trailing window for the working-set measure. */
  readonly workingSetWindowMs: number;
  /** Whether the acceptance targets (report/targets.ts) apply; otherwise informative only. */
  readonly targets?: boolean;
  /** Why these sizes: printed with the results. */
  readonly sizing: string;
}

export interface RunOptions {
  readonly contenders: readonly ContenderName[];
  readonly seed: number;
  readonly loadGuard?: LoadGuard;
  readonly minGainBlocks?: number;
  readonly tieSeed?: TieSeed;
  readonly streamEnd?: StreamEnd;
  /** The router's cost model = the replicas' × costScale (default 1). */
  readonly costScale?: number;
  readonly onProgress?: (contender: ContenderName, done: number, total: number) => void;
}

export interface WorkloadStats {
  readonly requests: number;
  readonly sessions: number;
  readonly meanPromptTokens: number;
  readonly p90PromptTokens: number;
  readonly meanOutputTokens: number;
  readonly requestsPerSession: number;
}

export interface ScenarioResult {
  readonly scenario: Scenario;
  readonly description: string;
  readonly replica: ReplicaConfig;
  readonly stats: WorkloadStats;
  readonly workingSet: WorkingSet;
  readonly bound: LruBound;
  readonly runs: readonly RunSummary[];
  readonly ttftCdf: Readonly<Record<string, [number, number][]>>;
  readonly buildS: number;
}

/** What the router believes the replicas cost: their own model (DESIGN §7), scaled. */
function routerCost(scale: number): CostModel {
  const c = DEFAULT_COST_MODEL;
  return { ...c, prefillBaseMs: c.prefillBaseMs * scale, prefillPerTokenMs: c.prefillPerTokenMs * scale, prefillAttentionMs: c.prefillAttentionMs * scale, decodeBaseMs: c.decodeBaseMs * scale, decodePerKvTokenMs: c.decodePerKvTokenMs * scale };
}

export function replicaConfig(totalBlocks: number): ReplicaConfig {
  return { blockSize: 16, totalBlocks, maxBatchedTokens: 8192, maxSeqs: 1024, cost: H100_LLAMA_8B };
}

export function workloadStats(w: Workload): WorkloadStats {
  const prompts = w.requests.map((r) => r.promptTokens).sort((a, b) => a - b);
  const sessions = new Set(w.requests.map((r) => r.session)).size;
  const n = Math.max(1, prompts.length);
  return {
    requests: w.requests.length,
    sessions,
    meanPromptTokens: prompts.reduce((s, v) => s + v, 0) / n,
    p90PromptTokens: prompts[Math.min(prompts.length - 1, Math.ceil(0.9 * prompts.length) - 1)] ?? 0,
    meanOutputTokens: w.requests.reduce((s, r) => s + r.maxTokens, 0) / n,
    requestsPerSession: w.requests.length / Math.max(1, sessions),
  };
}

export async function runScenario(scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  const t0 = performance.now();
  const workload = await buildWorkload(scenario.workload);
  const buildS = (performance.now() - t0) / 1000;
  const replica = replicaConfig(scenario.totalBlocks);
  const cluster = { replicas: scenario.replicas, replica, ...PRODUCTION_SIGNALS };
  const runs: RunSummary[] = [];
  const ttftCdf: Record<string, [number, number][]> = {};
  let reference: RunResult | undefined;
  for (const name of options.contenders) {
    const progress: ProgressFn | undefined = options.onProgress && ((done, total) => options.onProgress!(name, done, total));
    const run = simulate(
      workload,
      name,
      cluster,
      { seed: options.seed, loadGuard: options.loadGuard, minGainBlocks: options.minGainBlocks, tieSeed: options.tieSeed, window: scenario.window, streamEnd: options.streamEnd, cost: routerCost(options.costScale ?? 1) },
      progress,
    );
    runs.push(summarizeRun(run));
    ttftCdf[name] = cdfPoints(run.records.filter((r) => r.measured).map((r) => r.firstTokenMs - r.arrivalMs));
    if (!reference || name === "prefix-router") reference = run;
  }
  const byId = new Map(workload.requests.map((r) => [r.id, r]));
  const arrivals = (reference?.records ?? []).map((x) => {
    const r = byId.get(x.id)!;
    return { arrivalMs: x.arrivalMs, promptTokens: r.promptTokens, promptKeys: r.keys, kvKeys: kvKeys(r, workload.blockSize, workload.root) };
  });
  return {
    scenario,
    description: workload.description,
    replica,
    stats: workloadStats(workload),
    workingSet: workingSet(arrivals, scenario.workingSetWindowMs, scenario.window?.fromMs, scenario.window?.untilMs),
    bound: singleLruBound(arrivals, scenario.replicas * scenario.totalBlocks, workload.blockSize),
    runs,
    ttftCdf,
    buildS,
  };
}
