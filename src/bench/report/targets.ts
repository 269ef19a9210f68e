/**
 * The acceptance targets (routing issue), checked for the production default (prefix-router) on
 * every scenario that has targets, PASS / FAIL with the numbers:
 *   - every replica serves: none below 50% of the mean request share (no idle replicas);
 *   - TTFT mean and TTFT p90 lower than each cache-blind baseline (round-robin, least-loaded,
 *     consistent-hash);
 *   - token hit rate ≥ 95% of the single-LRU reference (one LRU with the whole cluster's
 *     capacity), or at least the best other policy's where the reference is out of reach;
 *   - stale-route rate < 5% of the routes that claimed a hit (the index is honest), not counting
 *     claims on blocks a request already running on that replica is computing (they do come).
 * A target whose contenders did not run is skipped.
 */
import type { RunSummary } from "../metrics/run-summary";
import type { ScenarioResult } from "../run-scenario";

export interface TargetCheck {
  readonly scenario: string;
  readonly target: string;
  readonly pass: boolean;
  readonly detail: string;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (x: number) => `${x.toFixed(1)} ms`;
const BASELINES = ["round-robin", "least-loaded", "consistent-hash"] as const;

export function checkTargets(result: ScenarioResult): TargetCheck[] {
  if (!result.scenario.targets) return [];
  const scenario = result.scenario.name;
  const by = new Map(result.runs.map((r) => [r.contender, r]));
  const pr = by.get("prefix-router");
  if (!pr) return [];
  const out: TargetCheck[] = [];
  const add = (target: string, pass: boolean, detail: string) => out.push({ scenario, target, pass, detail });

  const share = pr.requestsPerReplica.min / Math.max(1e-9, pr.requestsPerReplica.mean);
  add("every replica ≥ 50% of the mean request share", share >= 0.5, `min ${pr.requestsPerReplica.min} / mean ${pr.requestsPerReplica.mean.toFixed(1)} requests (${pct(share)}), max ${pr.requestsPerReplica.max}, idle ${pr.idleReplicas}`);
  for (const name of BASELINES) {
    const o = by.get(name);
    if (!o) continue;
    add(`TTFT mean < ${name}`, pr.ttftMs.mean < o.ttftMs.mean, `${ms(pr.ttftMs.mean)} vs ${ms(o.ttftMs.mean)} (${(pr.ttftMs.mean / o.ttftMs.mean).toFixed(2)}×)`);
    add(`TTFT p90 < ${name}`, pr.ttftMs.p90 < o.ttftMs.p90, `${ms(pr.ttftMs.p90)} vs ${ms(o.ttftMs.p90)} (${(pr.ttftMs.p90 / o.ttftMs.p90).toFixed(2)}×)`);
  }
  const reference = result.bound.tokenHitRate;
  const others = result.runs.filter((r) => r.contender !== "prefix-router" && r.contender !== "oracle");
  const bestOther = others.reduce<RunSummary | undefined>((best, r) => (!best || r.tokenHitRate > best.tokenHitRate ? r : best), undefined);
  const ofReference = pr.tokenHitRate / Math.max(1e-9, reference);
  const beatsOthers = bestOther ? pr.tokenHitRate >= bestOther.tokenHitRate - 1e-9 : false;
  add(
    "token hit rate ≥ 95% of the single-LRU reference (or ≥ the best other policy's)",
    ofReference >= 0.95 || beatsOthers,
    `${pct(pr.tokenHitRate)} = ${pct(ofReference)} of the reference ${pct(reference)}; best other ${bestOther ? `${bestOther.contender} ${pct(bestOther.tokenHitRate)}` : "-"}`,
  );
  const stale = (pr.staleRoutes - pr.staleInFlightRoutes) / Math.max(1, pr.hitRoutes);
  add("stale-route rate < 5%", stale < 0.05, `${pct(stale)} of ${pr.hitRoutes} hit routes (${pr.staleInFlightRoutes} more claimed blocks a running request was computing)`);
  return out;
}
