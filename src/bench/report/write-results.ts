/**
 * Writes a preset's results under the output folder: <preset>.json (everything, including the TTFT
 * CDF points), and per scenario <preset>-<scenario>-ttft-cdf.svg and <preset>-<scenario>-hit-stale.svg.
 * Returns the paths written.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ScenarioResult } from "../run-scenario";
import { barPanels, cdfChart } from "./svg-charts";
import type { TargetCheck } from "./targets";

export interface PresetReport {
  readonly preset: string;
  readonly command: string;
  readonly seed: number;
  /** Policy knobs that differ from production (empty for a plain run). */
  readonly overrides: Readonly<Record<string, unknown>>;
  readonly generatedAt: string;
  readonly node: string;
  readonly results: readonly ScenarioResult[];
  readonly targets: readonly TargetCheck[];
  readonly wallS: number;
}

export function writeResults(outDir: string, report: PresetReport): string[] {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, text: string) => {
    const path = join(outDir, name);
    writeFileSync(path, text);
    written.push(path);
  };
  write(`${report.preset}.json`, JSON.stringify(report, null, 2) + "\n");
  for (const r of report.results) {
    const base = `${report.preset}-${r.scenario.name}`;
    const names = r.runs.map((x) => x.contender);
    write(`${base}-ttft-cdf.svg`, cdfChart(`TTFT CDF — ${r.scenario.name}, ${r.scenario.replicas} replicas`, "time to first token (ms, log scale)", names.map((n) => ({ name: n, points: r.ttftCdf[n] ?? [] }))));
    write(
      `${base}-hit-stale.svg`,
      barPanels(`Prefix-cache hits and stale routes — ${r.scenario.name}, ${r.scenario.replicas} replicas`, names, [
        {
          title: "hit rate",
          max: 1,
          series: [
            { name: "token hit rate", values: r.runs.map((x) => x.tokenHitRate), color: "#d81b60" },
            { name: "request hit rate", values: r.runs.map((x) => x.requestHitRate), color: "#90caf9" },
          ],
        },
        { title: "stale-route rate (of hit routes)", threshold: { value: 0.05, label: "target < 5%" }, series: [{ name: "stale routes", values: r.runs.map((x) => x.staleRate), color: "#ff9800" }] },
      ]),
    );
  }
  return written;
}
