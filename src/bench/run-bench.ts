/**
 * The routing benchmark, discrete-event mode:   tsx src/bench/run-bench.ts [quick|full] [options]
 *                                                 tsx src/bench/run-bench.ts --trace FILE [--replicas N] [--blocks-per-replica B]
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
import { existsSync } from "node:fs";
import { basename } from "node:path";
import type { StreamEnd } from "./des/simulate";
import { PRESETS, type Preset } from "./presets";
import { scenarioHeader, scenarioTable, targetLines } from "./report/console-report";
import { ProgressBar } from "./report/progress-bar";
import { checkTargets, type TargetCheck } from "./report/targets";
import { writeResults } from "./report/write-results";
import { runScenario, type ScenarioResult } from "./run-scenario";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

/** One scenario: an operator's own trace on a cluster of their shape, every policy, the targets. */
function tracePreset(file: string, replicas: number, totalBlocks: number, hashBlockTokens: number): Preset {
  if (!existsSync(file)) throw new Error(`no trace at ${file}`);
  return {
    name: `trace-${basename(file).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]/g, "_")}`,
    description: `replay of ${file} on ${replicas} replicas × ${totalBlocks} blocks`,
    seed: 1,
    contenders: CONTENDERS,
    scenarios: [
      {
        name: "trace",
        workload: { kind: "mooncake", params: { file, hashBlockTokens } },
        replicas,
        totalBlocks,
        workingSetWindowMs: 60_000,
        targets: true,
        sizing: `the trace as recorded; ${totalBlocks} blocks per replica`,
      },
    ],
  };
}

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
    .option("--trace <file>", "replay a trace in the Mooncake format (jsonl: timestamp ms, input_length, output_length, hash_ids) instead of the preset's scenarios")
    .option("--replicas <n>", "replicas for --trace (default 8)", positiveInt)
    .option("--blocks-per-replica <n>", "KV blocks of 16 tokens per replica for --trace (default 27,500: Llama-3.1-8B on an H100)", positiveInt)
    .option("--trace-block-tokens <n>", "tokens per hash id in --trace (default 512, Mooncake's)", positiveInt)
    .option("--stream-end <completion|headers>", "when the router's Envoy stream ends (default completion, as Envoy 1.40 does; headers: what the router would see if it ended at a streaming response's headers)", (v) => {
      if (v !== "completion" && v !== "headers") throw new InvalidArgumentError("expected completion or headers");
      return v;
    })
    .option("--cost-scale <x>", "the router's cost model = the replicas' × x (robustness: a router that misjudges the hardware)", (v) => {
      const x = Number(v);
      if (!(x > 0)) throw new InvalidArgumentError("expected a positive number");
      return x;
    })
    .showHelpAfterError();
  program.parse(argv as string[], { from: "user" });
  const opts = program.opts<{
    out: string; contenders?: string[]; scenarios?: string[]; loadGuard?: LoadGuard; minGain?: number; tieSeed?: TieSeed; seed?: number;
    trace?: string; replicas?: number; blocksPerReplica?: number; traceBlockTokens?: number; streamEnd?: StreamEnd; costScale?: number;
  }>();
  const presetName = program.args[0] ?? "quick";
  const preset = opts.trace ? tracePreset(opts.trace, opts.replicas ?? 8, opts.blocksPerReplica ?? 27_500, opts.traceBlockTokens ?? 512) : PRESETS[presetName];
  if (!preset) throw new Error(`unknown preset ${JSON.stringify(presetName)} (have: ${Object.keys(PRESETS).join(", ")})`);
  const contenders = (opts.contenders ?? preset.contenders) as ContenderName[];
  for (const c of contenders) if (!CONTENDERS.includes(c)) throw new Error(`unknown contender ${JSON.stringify(c)} (have: ${CONTENDERS.join(", ")})`);
  const scenarios = preset.scenarios.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  if (scenarios.length === 0) throw new Error(`no scenario selected (have: ${preset.scenarios.map((s) => s.name).join(", ")})`);
  const seed = opts.seed ?? preset.seed;

  const overrides = Object.fromEntries(
    Object.entries({ loadGuard: opts.loadGuard, minGainBlocks: opts.minGain, tieSeed: opts.tieSeed, streamEnd: opts.streamEnd, costScale: opts.costScale }).filter(([, v]) => v !== undefined),
  );
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
      streamEnd: opts.streamEnd,
      costScale: opts.costScale,
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
