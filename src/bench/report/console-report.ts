/** The console form of a scenario's results: a header with sizing, one row per policy, targets. */
import type { ScenarioResult } from "../run-scenario";
import type { TargetCheck } from "./targets";

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "-");
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const mean = (xs: readonly number[]) => xs.reduce((s, v) => s + v, 0) / Math.max(1, xs.length);

export function scenarioHeader(r: ScenarioResult): string {
  const s = r.scenario;
  const ws = r.workingSet;
  const pr = r.runs.find((x) => x.contender === "prefix-router");
  const rr = r.runs.find((x) => x.contender === "round-robin");
  return [
    `== ${s.name}: ${r.description}`,
    `   requests ${r.stats.requests} (${r.stats.sessions} sessions, ${f(r.stats.requestsPerSession, 2)} per session), prompt mean ${f(r.stats.meanPromptTokens, 0)} / p90 ${r.stats.p90PromptTokens} tokens, output mean ${f(r.stats.meanOutputTokens, 0)} tokens; built in ${f(r.buildS)} s`,
    `   cluster ${s.replicas} replicas × ${s.totalBlocks} blocks of ${r.replica.blockSize} tokens (${f((s.totalBlocks * r.replica.blockSize) / 1000, 0)}k tokens each), measured arrivals ${s.window ? `${f(s.window.fromMs / 1000, 0)}–${f(s.window.untilMs / 1000, 0)} s` : "all"}`,
    `   working set (distinct blocks used in a trailing ${f(ws.windowMs / 1000, 0)} s) mean ${f(ws.meanBlocks, 0)}, peak ${ws.peakBlocks}: one replica's cache holds ${pct(s.totalBlocks / ws.meanBlocks)} of it, the cluster ${pct((s.replicas * s.totalBlocks) / ws.meanBlocks)}`,
    `   load: busy time / window ${rr ? pct(rr.utilisation) : "-"} (round-robin), ${pr ? pct(pr.utilisation) : "-"} (prefix-router); requests in flight per replica ${rr ? f(mean(rr.meanInFlight)) : "-"} / ${pr ? f(mean(pr.meanInFlight)) : "-"}`,
    `   single LRU of the whole cluster's capacity (${r.bound.capacityBlocks} blocks): token hit rate ${pct(r.bound.tokenHitRate)}; prefix-router reaches ${pr ? pct(pr.tokenHitRate / r.bound.tokenHitRate) : "-"} of it`,
    `   sizing: ${s.sizing}`,
  ].join("\n");
}

export function scenarioTable(r: ScenarioResult): string {
  const headers = ["policy", "TTFT mean", "p50", "p90", "p99 ms", "E2E p50", "p99 ms", "req/s", "tok hit", "of ref", "stale", "imbal", "in-fl", "req/replica", "idle", "util", "dec p50", "p99 µs"];
  const rows = r.runs.map((x) => [
    x.contender, f(x.ttftMs.mean), f(x.ttftMs.p50), f(x.ttftMs.p90), f(x.ttftMs.p99), f(x.e2eMs.p50, 0), f(x.e2eMs.p99, 0), f(x.throughputRps, 2),
    pct(x.tokenHitRate), pct(x.tokenHitRate / Math.max(1e-9, r.bound.tokenHitRate)), pct(x.staleRate), f(x.loadImbalance, 2), f(x.inFlightImbalance, 2),
    `${x.requestsPerReplica.min}–${x.requestsPerReplica.max}`, String(x.idleReplicas), pct(x.utilisation), f(x.decisionUs.p50), f(x.decisionUs.p99, 0),
  ]);
  return table(headers, rows);
}

export function targetLines(checks: readonly TargetCheck[]): string {
  return checks.map((c) => `   ${c.pass ? "PASS" : "FAIL"}  ${c.scenario}: ${c.target} — ${c.detail}`).join("\n");
}
