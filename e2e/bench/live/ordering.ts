/**
 * Does the live run rank the policies as the discrete-event run does? For each metric, every pair
 * of policies whose discrete-event values differ clearly (by more than `margin`, relative) must be
 * ordered the same way live. Pairs the simulation cannot tell apart are not judged.
 */
import type { RunSummary } from "../../../src/bench/metrics/run-summary";

export interface OrderingCheck {
  readonly metric: string;
  readonly judged: number;
  readonly agreed: number;
  readonly disagreements: readonly string[];
}

const METRICS: ReadonlyArray<{ name: string; value: (r: RunSummary) => number; higherIsBetter: boolean }> = [
  { name: "token hit rate", value: (r) => r.tokenHitRate, higherIsBetter: true },
  { name: "TTFT p50", value: (r) => r.ttftMs.p50, higherIsBetter: false },
  { name: "TTFT mean", value: (r) => r.ttftMs.mean, higherIsBetter: false },
];

export function compareOrdering(des: readonly RunSummary[], live: readonly RunSummary[], margin = 0.15): OrderingCheck[] {
  const liveBy = new Map(live.map((r) => [r.contender, r]));
  return METRICS.map((m) => {
    const disagreements: string[] = [];
    let judged = 0;
    for (let i = 0; i < des.length; i++) {
      for (let j = i + 1; j < des.length; j++) {
        const [a, b] = [des[i], des[j]];
        const [la, lb] = [liveBy.get(a.contender), liveBy.get(b.contender)];
        if (!la || !lb) continue;
        const [va, vb] = [m.value(a), m.value(b)];
        if (Math.abs(va - vb) <= margin * Math.max(Math.abs(va), Math.abs(vb))) continue;
        judged++;
        if (Math.sign(va - vb) !== Math.sign(m.value(la) - m.value(lb))) {
          disagreements.push(`${a.contender} vs ${b.contender}: des ${fmt(va)} / ${fmt(vb)}, live ${fmt(m.value(la))} / ${fmt(m.value(lb))}`);
        }
      }
    }
    return { metric: m.name, judged, agreed: judged - disagreements.length, disagreements };
  });
}

function fmt(x: number): string {
  return Math.abs(x) < 1 ? x.toFixed(3) : x.toFixed(1);
}
