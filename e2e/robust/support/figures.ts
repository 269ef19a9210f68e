/** Small figure helpers shared by the chaos, soak and several-routers runs. */
import { cpus } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../support/router-fixture";
import type { RequestRecord } from "./chat-traffic";

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const round = (x: number | null, digits = 1): number | null => (x === null ? null : Number(x.toFixed(digits)));

export { countBy } from "../../../src/common/count-by";

/** Share of follow-up turns (turn ≥ 1) the router decided as hits; null when there are none. */
export function followUpHitShare(records: readonly RequestRecord[]): number | null {
  const follow = records.filter((r) => r.turn >= 1 && r.outcome === "answered");
  return follow.length === 0 ? null : follow.filter((r) => r.decision === "hit").length / follow.length;
}

/** Cached prompt tokens / prompt tokens, as the replicas reported them. */
export function cachedTokenShare(records: readonly RequestRecord[]): number | null {
  const prompt = records.reduce((n, r) => n + r.promptTokens, 0);
  return prompt === 0 ? null : records.reduce((n, r) => n + r.cachedTokens, 0) / prompt;
}

/**
 * How long after `fromMs` follow-up hits came back: the start of the first 1 s window (stepped by
 * 100 ms) with at least `minSamples` follow-ups whose hit share reaches `fraction` of `baseline`,
 * minus fromMs. Null when it never did before `untilMs`.
 */
export function hitRecoveryMs(records: readonly RequestRecord[], fromMs: number, untilMs: number, baseline: number, fraction = 0.8, minSamples = 5): number | null {
  for (let t = fromMs; t + 1000 <= untilMs; t += 100) {
    const share = followUpHitShare(records.filter((r) => r.atMs >= t && r.atMs < t + 1000));
    const n = records.filter((r) => r.atMs >= t && r.atMs < t + 1000 && r.turn >= 1 && r.outcome === "answered").length;
    if (share !== null && n >= minSamples && share >= fraction * baseline) return t - fromMs;
  }
  return null;
}

/** `prefix_router_decisions_total{outcome="…",reason="…"} N` lines of a /metrics text, as "outcome/reason" → N. */
export function decisionCounts(metricsText: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = /^prefix_router_decisions_total\{([^}]*)\} (\S+)$/gm;
  for (let m = re.exec(metricsText); m !== null; m = re.exec(metricsText)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${labels.outcome ?? "?"}/${labels.reason ?? ""}`] = Number(m[2]);
  }
  return out;
}

/** The value of an unlabelled gauge or counter in a /metrics text (0 if absent). */
export function metricValue(metricsText: string, name: string): number {
  const line = metricsText.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

export function addCounts(into: Record<string, number>, more: Record<string, number>): Record<string, number> {
  for (const [k, v] of Object.entries(more)) into[k] = (into[k] ?? 0) + v;
  return into;
}

export function machine(): { cpus: number; cpu: string | undefined; node: string } {
  return { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version };
}

/** What every robustness report starts with: the command that made it, the machine, the options. */
export interface RunHeader<Options> {
  readonly command: string;
  readonly machine: ReturnType<typeof machine>;
  readonly options: Options;
}

/** Requests of a load by how they ended: answered within the message timeout, late, failed. */
export interface RequestOutcomes {
  readonly requests: number;
  readonly answered: number;
  readonly late: number;
  readonly failed: number;
}

/** Writes bench-results/<name>.json and returns its path. */
export function writeResults(name: string, value: unknown): string {
  const dir = join(REPO_ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(value, null, 1)}\n`);
  return file;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
