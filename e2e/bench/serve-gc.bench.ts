/**
 * The router's event-loop collections as production sees them: `node <flags> dist/cli.js serve`
 * in its own process (the decision bench's router shares a process and a heap with its harness),
 * 4 workers on the memory map, driven by the decision bench's client threads: after a warm-up that
 * lasts until the main thread's first mark-compact since the start, warm 1k requests alone, then
 * beside two cold 32k requests in flight at all times (BENCH_PAIRS pairs, 3, of 600 each). For
 * each phase: warm 1k p50/p99 and the main thread's collections from the router's own /metrics
 * (prom-client's nodejs_gc_duration_seconds: major = mark-compact, minor = scavenge, incremental
 * = marking steps), so the figures are what an operator's dashboard shows.
 * Flags: BENCH_NODE_FLAGS (default: the router's, src/cli/node-flags.ts; "none": node's defaults).
 * Writes bench-results/serve-gc.json (BENCH_OUT to name another file).
 * Run: npm run bench:serve-gc (builds dist/ first)
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { waitUntil } from "../../src/cli/envoy-runner";
import { ROUTER_NODE_FLAGS } from "../../src/cli/node-flags";
import { freePort } from "../support/free-port";
import { table } from "../../src/bench/report/console-report";
import { QWEN3_TOKENIZER, realPrompts, REPO_ROOT } from "../support/router-fixture";
import { startClientThread } from "./client-thread";
import type { ClientResult } from "./decision-client";

const PAIRS = Number(process.env.BENCH_PAIRS ?? 3);
const WARM = 600;
/** Idle time between the warm-up and the first pair (BENCH_IDLE_MS). */
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 15_000);
const WARMUP_BATCHES = 30;
const flagsEnv = process.env.BENCH_NODE_FLAGS;
const FLAGS = flagsEnv === undefined ? [...ROUTER_NODE_FLAGS] : flagsEnv === "none" ? [] : flagsEnv.split(/\s+/).filter(Boolean);

type GcKind = "major" | "minor" | "incremental";
type GcTotals = Record<GcKind, { count: number; seconds: number }>;

/** The main thread's collections so far, from the router's /metrics. */
async function gcTotals(admin: string): Promise<GcTotals> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const totals: GcTotals = { major: { count: 0, seconds: 0 }, minor: { count: 0, seconds: 0 }, incremental: { count: 0, seconds: 0 } };
  for (const m of text.matchAll(/^\w*nodejs_gc_duration_seconds_(count|sum)\{kind="(\w+)"\} ([\d.e+-]+)$/gm)) {
    const entry = totals[m[2] as GcKind];
    if (entry) entry[m[1] === "count" ? "count" : "seconds"] = Number(m[3]);
  }
  return totals;
}

const diff = (a: GcTotals, b: GcTotals): GcTotals =>
  Object.fromEntries((Object.keys(a) as GcKind[]).map((k) => [k, { count: b[k].count - a[k].count, seconds: b[k].seconds - a[k].seconds }])) as GcTotals;

async function main(): Promise<void> {
  const load = loadavg()[0];
  const [extProc, admin] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  const dir = mkdtempSync(join(tmpdir(), "serve-gc-"));
  const config = join(dir, "router.yaml");
  const workers = [1, 2, 3, 4].map((i) => `  - { id: w${i}, address: "10.0.0.${i}:8000", models: [qwen3] }`).join("\n");
  writeFileSync(
    config,
    `extProc: { listen: "${extProc}" }\nadmin: { listen: "${admin}" }\nblockSize: 16\nhashSeed: "0"\nstore: { kind: memory }\nlog: { level: warn }\n` +
      `limits: { maxBodyBytes: 67108864, maxPromptChars: 10000000 }\nrouting: { decisionTimeoutMs: 30000, load: { scrapeMetrics: false } }\n` +
      `models:\n  - name: qwen3\n    tokenizer: ${JSON.stringify(QWEN3_TOKENIZER)}\nworkers:\n${workers}\n`,
  );
  const router = spawn(process.execPath, [...FLAGS, join(REPO_ROOT, "dist/cli.js"), "serve", "--config", config], { stdio: ["ignore", "inherit", "inherit"] });
  const clients = [startClientThread(), startClientThread()];
  try {
    await waitUntil("the router's /healthz", async () => (await fetch(`http://${admin}/healthz`)).ok, 60_000);
    const pool = realPrompts();
    const text = (chars: number) => {
      let t = "";
      for (let i = 0; t.length < chars; i++) t += pool[i % pool.length] + "\n\n";
      return t.slice(0, chars);
    };
    const systems = { 1000: text(4_000), 32000: text(128_000) };
    const [client, loader] = clients;
    for (const c of clients) await c.send({ op: "prompts", systems, hugeText: "" });
    const warm = (total: number) => client.send<ClientResult>({ op: "run", address: extProc, bodies: [{ kind: "warm-prefix", size: 1000 }], total, concurrency: 1 });
    // Warm-up: the code optimized, the prefix cached, the cold path run — until the main thread's
    // first mark-compact since the start. Loading the tokenizers leaves a ~60 MB heap whose limit
    // holds for a while; the first collection after it sets the limit from the ~22 MB a serving
    // router keeps, the state every long-running router is in (WARMUP_BATCHES at most).
    await warm(1_500);
    const startMajors = (await gcTotals(admin)).major.count;
    let batches = 0;
    while (batches++ < WARMUP_BATCHES && (await gcTotals(admin)).major.count === startMajors) {
      await loader.send({ op: "run", address: extProc, bodies: [{ kind: "cold", size: 32000 }], total: 100, concurrency: 2 });
    }
    const warmedUp = (await gcTotals(admin)).major.count > startMajors;
    console.log(`warm-up: ${batches - 1} batches of 100 cold 32k; ${warmedUp ? "the first mark-compact since the start came" : "no mark-compact since the start (the figures are the start's)"}`);
    // Then idle, as a router is between bursts.
    await new Promise((r) => setTimeout(r, IDLE_MS));

    const rows: string[][] = [];
    const results: Record<string, unknown>[] = [];
    const ms = (s: number) => (s * 1000).toFixed(0);
    const record = (phase: string, pair: number, r: ClientResult, gc: GcTotals, extra = "") => {
      results.push({ phase, pair, warm1k: r.roundTripUs, gc });
      rows.push([phase, String(pair), (r.roundTripUs.p50 / 1000).toFixed(2), (r.roundTripUs.p99 / 1000).toFixed(2), `${gc.major.count} (${ms(gc.major.seconds)} ms)`, `${gc.incremental.count} (${ms(gc.incremental.seconds)} ms)`, `${gc.minor.count} (${ms(gc.minor.seconds)} ms)`, extra]);
    };
    for (let pair = 1; pair <= PAIRS; pair++) {
      let before = await gcTotals(admin);
      const alone = await warm(WARM);
      record("warm 1k alone", pair, alone, diff(before, await gcTotals(admin)));
      before = await gcTotals(admin);
      await loader.send({ op: "background", address: extProc, bodies: [{ kind: "cold", size: 32000 }], concurrency: 2 });
      const busy = await warm(WARM);
      const cold = await loader.send<ClientResult>({ op: "stop-background" });
      record("beside 2 cold 32k", pair, busy, diff(before, await gcTotals(admin)), `p99 ${(busy.roundTripUs.p99 / alone.roundTripUs.p99).toFixed(2)}× alone; ${cold.roundTripUs.n} cold 32k`);
      await new Promise((r) => setTimeout(r, 3_000)); // the cold prompts' rests keyed
    }
    console.log(`\nThe router as its own process: node ${FLAGS.join(" ") || "(no flags)"} dist/cli.js serve; main-thread collections from its /metrics\n`);
    console.log(table(["phase", "pair", "warm p50 ms", "warm p99 ms", "mark-compacts", "marking steps", "scavenges", ""], rows));
    const outDir = join(REPO_ROOT, "bench-results");
    mkdirSync(outDir, { recursive: true });
    const out = join(outDir, process.env.BENCH_OUT ?? "serve-gc.json");
    writeFileSync(out, JSON.stringify({ command: "npm run bench:serve-gc", nodeFlags: FLAGS, warmedUp, date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage1m: { start: load, end: loadavg()[0] }, results }, null, 1));
    console.log(`\nwrote ${out}`);
  } finally {
    router.kill("SIGTERM");
    for (const c of clients) await c.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
