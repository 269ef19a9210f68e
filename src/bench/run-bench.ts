/**
 * The routing benchmark, discrete-event mode:   tsx src/bench/run-bench.ts [quick|full] [options]
 *
 * Runs every policy of the preset over each scenario's workload on simulated vLLM replicas, prints a
 * table per scenario and the acceptance targets (PASS/FAIL), and writes bench-results/<preset>.json
 * plus SVG charts. Exits 0 whether targets pass or not (they are findings, not a build gate);
 * 1 on an error.
 */
import { Command, InvalidArgumentError } from "commander";
import type { LoadGuard } from "../routing/policy";
import type { TieSeed } from "../routing/policies/routing-policy";
import { CONTENDERS, type ContenderName } from "./des/contenders";
import { PRESETS } from "./presets";
import { scenarioHeader, scenarioTable, targetLines } from "./report/console-report";
import { ProgressBar } from "./report/progress-bar";
import { checkTargets, type TargetCheck } from "./report/targets";
import { writeResults } from "./report/write-results";
import { runScenario, type ScenarioResult } from "./run-scenario";

function parseList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter(Boolean);
}

function parseGuard(value: string): LoadGuard {
  const [absolute, relative] = value.split(",").map(Number);
  if (!(absolute >= 0) || !(relative >= 1)) throw new InvalidArgumentError("expected ABS,REL with ABS ≥ 0 and REL ≥ 1, e.g. 8,1.5");
  return { absolute, relative };
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command("run-bench")
    .description("Routing benchmark (discrete-event): all policies over simulated vLLM replicas")
    .argument("[preset]", `one of: ${Object.keys(PRESETS).join(", ")}`, "quick")
    .option("--out <dir>", "output folder", "bench-results")
    .option("--contenders <list>", `comma-separated subset of: ${CONTENDERS.join(", ")}`, parseList)
    .option("--scenarios <list>", "comma-separated subset of the preset's scenarios", parseList)
    .option("--load-guard <abs,rel>", "load guard of the sticky-least-loaded contenders (default: production 8,1.5)", parseGuard)
    .option("--min-gain <blocks>", "minimum gain of sticky-least-loaded in blocks (default: production 16)", (v) => Number.parseInt(v, 10))
    .option("--tie-seed <first|last>", "which block seeds tie-breaks (default: production last)", (v) => {
      if (v !== "first" && v !== "last") throw new InvalidArgumentError("expected first or last");
      return v;
    })
    .option("--seed <n>", "seed of the random policy", (v) => Number.parseInt(v, 10))
    .showHelpAfterError();
  program.parse(argv as string[], { from: "user" });
  const opts = program.opts<{ out: string; contenders?: string[]; scenarios?: string[]; loadGuard?: LoadGuard; minGain?: number; tieSeed?: TieSeed; seed?: number }>();
  const presetName = program.args[0] ?? "quick";
  const preset = PRESETS[presetName];
  if (!preset) throw new Error(`unknown preset ${JSON.stringify(presetName)} (have: ${Object.keys(PRESETS).join(", ")})`);
  const contenders = (opts.contenders ?? preset.contenders) as ContenderName[];
  for (const c of contenders) if (!CONTENDERS.includes(c)) throw new Error(`unknown contender ${JSON.stringify(c)} (have: ${CONTENDERS.join(", ")})`);
  const scenarios = preset.scenarios.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  if (scenarios.length === 0) throw new Error(`no scenario selected (have: ${preset.scenarios.map((s) => s.name).join(", ")})`);
  const seed = opts.seed ?? preset.seed;

  const overrides = Object.fromEntries(Object.entries({ loadGuard: opts.loadGuard, minGainBlocks: opts.minGain, tieSeed: opts.tieSeed }).filter(([, v]) => v !== undefined));
  const started = performance.now();
  const bar = new ProgressBar();
  const results: ScenarioResult[] = [];
  const targets: TargetCheck[] = [];
  bar.note(`prefix-router benchmark, preset ${preset.name}: ${preset.description}`);
  if (Object.keys(overrides).length > 0) process.stdout.write(`policy overrides (not production defaults): ${JSON.stringify(overrides)}\n`);
  for (const scenario of scenarios) {
    bar.note(`[${scenario.name}] building workload (real tokenizer) …`);
    const result = await runScenario(scenario, {
      contenders,
      seed,
      loadGuard: opts.loadGuard,
      minGainBlocks: opts.minGain,
      tieSeed: opts.tieSeed,
      onProgress: (c, done, total) => bar.update(`[${scenario.name}] ${c.padEnd(15)}`, done, total),
    });
    results.push(result);
    const checks = checkTargets(result);
    targets.push(...checks);
    process.stdout.write(`\n${scenarioHeader(result)}\n\n${scenarioTable(result)}\n${checks.length ? `\n${targetLines(checks)}\n` : ""}`);
  }
  const wallS = (performance.now() - started) / 1000;
  const command = ["tsx src/bench/run-bench.ts", ...argv].join(" ");
  const written = writeResults(opts.out, {
    preset: preset.name,
    command,
    seed,
    overrides,
    generatedAt: new Date().toISOString(),
    node: process.version,
    results,
    targets,
    wallS,
  });
  const passed = targets.filter((t) => t.pass).length;
  process.stdout.write(`\ntargets: ${passed}/${targets.length} PASS; ${wallS.toFixed(0)} s wall; wrote ${written.join(", ")}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`run-bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
