/**
 * The acceptance targets, checked on a scenario's results (PASS / FAIL with the numbers):
 *
 * chat and RAG, 8 replicas ("chat-rag"):
 *   - prefix-router token hit rate ≥ 90% of the oracle's, and ≥ 2.5× round-robin's;
 *   - prefix-router TTFT p50 ≤ half of round-robin's;
 *   - prefix-router stale-route rate < 5%;
 *   - against consistent hashing: a hit rate that matches it (at least its rate less 1 point) and
 *     better balance: lower max/mean time-averaged in-flight requests (the load bounded-load
 *     hashing bounds; busy time saturates at 100% under continuous batching), busy time shown too.
 * Mooncake synthetic trace, 8 replicas ("mooncake"):
 *   - prefix-router token hit rate ≥ consistent hashing's;
 *   - no replica above 1.1× the mean load (busy time).
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

export function checkTargets(result: ScenarioResult): TargetCheck[] {
  const group = result.scenario.targets;
  if (!group) return [];
  const by = new Map(result.runs.map((r) => [r.contender, r]));
  const pr = by.get("prefix-router");
  if (!pr) return [];
  const out: TargetCheck[] = [];
  const check = (other: string, target: string, test: (p: RunSummary, o: RunSummary) => [boolean, string]) => {
    const o = by.get(other);
    if (!o) return;
    const [pass, detail] = test(pr, o);
    out.push({ scenario: result.scenario.name, target, pass, detail });
  };
  if (group === "chat-rag") {
    check("oracle", "token hit rate ≥ 90% of oracle", (p, o) => [p.tokenHitRate >= 0.9 * o.tokenHitRate, `${pct(p.tokenHitRate)} vs oracle ${pct(o.tokenHitRate)} (${pct(p.tokenHitRate / o.tokenHitRate)} of it)`]);
    check("round-robin", "token hit rate ≥ 2.5× round-robin", (p, o) => [p.tokenHitRate >= 2.5 * o.tokenHitRate, `${pct(p.tokenHitRate)} vs ${pct(o.tokenHitRate)} (${(p.tokenHitRate / o.tokenHitRate).toFixed(2)}×)`]);
    check("round-robin", "TTFT p50 ≤ ½ round-robin", (p, o) => [p.ttftMs.p50 <= 0.5 * o.ttftMs.p50, `${ms(p.ttftMs.p50)} vs ${ms(o.ttftMs.p50)} (${(p.ttftMs.p50 / o.ttftMs.p50).toFixed(2)}×)`]);
    out.push({ scenario: result.scenario.name, target: "stale-route rate < 5%", pass: pr.staleRate < 0.05, detail: `${pct(pr.staleRate)} of ${pr.hitRoutes} hit routes` });
    check("consistent-hash", "hit rate matches consistent hashing", (p, o) => [p.tokenHitRate >= o.tokenHitRate - 0.01, `${pct(p.tokenHitRate)} vs ${pct(o.tokenHitRate)}`]);
    check("consistent-hash", "better balance than consistent hashing", (p, o) => [
      p.inFlightImbalance < o.inFlightImbalance,
      `max/mean in flight ${p.inFlightImbalance.toFixed(3)} vs ${o.inFlightImbalance.toFixed(3)} (busy time ${p.loadImbalance.toFixed(3)} vs ${o.loadImbalance.toFixed(3)})`,
    ]);
  } else {
    check("consistent-hash", "token hit rate ≥ consistent hashing", (p, o) => [p.tokenHitRate >= o.tokenHitRate, `${pct(p.tokenHitRate)} vs ${pct(o.tokenHitRate)}`]);
    out.push({
      scenario: result.scenario.name,
      target: "no replica > 1.1× mean load",
      pass: pr.loadImbalance <= 1.1,
      detail: `max/mean busy time ${pr.loadImbalance.toFixed(3)} (in flight ${pr.inFlightImbalance.toFixed(3)})`,
    });
  }
  return out;
}
