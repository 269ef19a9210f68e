/** The peers table on the console (and, pasted, in docs/benchmark.md). */
import { table } from "../../../src/bench/report/console-report";
import type { PeerRow } from "./peers-summary";

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");
const fine = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "-");
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function peersTable(rows: readonly PeerRow[]): string {
  return table(
    ["router", "TTFT mean", "p50", "p90", "p99 ms", "token hit", "requests", "failed", "per replica", "added p50", "p99 ms", "CPU s", "peak RSS MiB"],
    rows.map((r) => [
      r.router,
      ms(r.ttftMs.mean),
      ms(r.ttftMs.p50),
      ms(r.ttftMs.p90),
      ms(r.ttftMs.p99),
      pct(r.tokenHitRate),
      String(r.requests),
      String(r.failed),
      `${r.requestsPerReplica.min}–${r.requestsPerReplica.max}`,
      fine(r.addedLatencyMs.p50),
      fine(r.addedLatencyMs.p99),
      r.cpuS.toFixed(1),
      r.peakRssMiB.toFixed(0),
    ]),
  );
}
