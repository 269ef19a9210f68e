/**
 * Decision latency of the whole request path through the real ext_proc gRPC server (BUFFERED
 * mode, Envoy's message sequence), for 1k / 8k / 32k-token chat prompts:
 *   cold            every piece of the prompt new (a marker in every paragraph: nothing cached)
 *   warm-prefix     shared system prompt and history cached, new last user turn (the common case)
 *   warm-identical  the same request again
 * and the no-op floor: the same gRPC stack answering without doing anything. Then, under load:
 *   throughput      16 requests in flight, a 1k/8k/32k warm-prefix mix, against the floor's
 *                   (3 pairs after a warm-up, the target on their median ratio)
 *   interference    warm 1k p99 alone and while two cold 32k requests run at all times (3 pairs),
 *                   then beside cold 32k prompts paced at COLD_RATES (information, no target)
 *   huge tools      a 5 MB tool description (issue 11): decision time, RSS, event-loop delay —
 *                   once with a 30 s budget, then 4 at once under the default 150 ms budget
 * Requests come from a client thread (decision-client.ts), as Envoy's come from another process;
 * every row records the server thread's event-loop delay (perf_hooks.monitorEventLoopDelay).
 * The warm rows measure a prefix the replicas hold, as production sees it: after the priming
 * requests, after each warm-up and after the mix's, every worker the prompt was routed to reports
 * the blocks recorded on it as stored over the ingest API, as vLLM's KV events do within ~100 ms
 * of a prefill (without them a warm request would find its prefix only speculatively recorded,
 * and re-record 2,048 speculative entries at 32k).
 * Each size's rows follow an unmeasured warm-up (WARMUP_ROUNDS).
 * Prints a table and the targets (PASS/FAIL, not a gate) and writes bench-results/decision.json.
 * Run: npm run bench:decision
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Server, type ServerDuplexStream } from "@grpc/grpc-js";
import { bindAndWrap } from "../../src/common/grpc-server";
import type { ProcessingRequest, ProcessingResponse } from "../../src/extproc/messages";
import { externalProcessorService } from "../../src/extproc/proto";
import { parseOpenAiBody } from "../../src/request/parse-openai-body";
import { realPrompts, REPO_ROOT, startTestRouter, testConfig, type RunningRouter } from "../support/router-fixture";
import { loadTokenizerRegistry } from "../../src/tokenize/tokenizer-registry";
import type { RouterConfig } from "../../src/config/schema";
import { percentile } from "../../src/bench/metrics/stats";
import { table } from "../../src/bench/report/console-report";
import { IngestTestClient, withIngestTokens } from "../support/ingest-client";
import { chat, HISTORY } from "./decision-bodies";
import type { BodyKind, ClientCommand, ClientResult } from "./decision-client";
import { startClientThread, type ClientThread } from "./client-thread";

const SIZES = [1_000, 8_000, 32_000];
const ITERATIONS: Record<number, number> = { 1_000: 300, 8_000: 150, 32_000: 40 };
/**
 * Before a size's rows are measured, its warm requests run this many times their row's count,
 * unmeasured: a router in production has served millions of requests, while the first thousands
 * after a start still wait for V8 to optimize their code — and TurboFan compiles on the same two
 * cores (--trace-opt: 1.6 s of compiling over the first 1,500 warm 8k requests, 0.6 s over the next).
 */
const WARMUP_ROUNDS = 2;
const CONCURRENCY = 16;
const MIX_REQUESTS = 480;
const MIX_PAIRS = 3;
const INTERFERENCE_PAIRS = 3;
/**
 * Paced interference rows: cold 32k prompts started per second (32k new tokens each), beside
 * PACED_WARM warm 1k requests (~2.5 s: at 5/s a dozen cold prompts run among them).
 */
const COLD_RATES = [5, 10, 20, 40];
const PACED_WARM = 900;
/**
 * After cold prompts, the rows that follow wait (at most this long) until the router is quiet: no
 * rest of a head decision still being keyed (the bulk encoder, at nice 19), then a further second
 * for the event loop's records of those rests. Measured right away, a warm row ran beside them —
 * warm 32k 5.1 ms against 2.9 for the identical row after it in one run; the interference "alone"
 * up to 1.9× its first pair's p99.
 */
const QUIET_TIMEOUT_MS = 10_000;
const BIG_LIMITS = { maxBodyBytes: 64 << 20, maxPromptChars: 10_000_000 };
/**
 * tokenizerCache overrides: BENCH_TOKENIZER_THREADS=n the thread count (default: one per core, at
 * most 4); BENCH_BULK_NICE=n bulkNice (default: the config default, 19; 0: no bulk encoder process);
 * BENCH_LARGE_THREADS=n the large-prompt lane's threads (0: no lane), BENCH_LARGE_NICE=n its nice value.
 */
const TOKENIZER_OVERRIDES = {
  tokenizerCache: {
    ...(process.env.BENCH_TOKENIZER_THREADS ? { threads: Number(process.env.BENCH_TOKENIZER_THREADS) } : {}),
    ...(process.env.BENCH_BULK_NICE ? { bulkNice: Number(process.env.BENCH_BULK_NICE) } : {}),
    largeLane: {
      ...(process.env.BENCH_LARGE_THREADS ? { threads: Number(process.env.BENCH_LARGE_THREADS) } : {}),
      ...(process.env.BENCH_LARGE_NICE ? { nice: Number(process.env.BENCH_LARGE_NICE) } : {}),
    },
  },
};
const OUT_FILE = process.env.BENCH_OUT ?? "decision.json";

/** Waits until the router keys no rest in the background (QUIET_TIMEOUT_MS at most), then a second more. */
async function quiet(router: RunningRouter): Promise<void> {
  const pool = router.service.tokenizers as { restsPending?: number };
  const until = Date.now() + QUIET_TIMEOUT_MS;
  while ((pool.restsPending ?? 0) > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}

/** Starts an ext_proc server that answers every message with an empty response. */
async function startNoopServer() {
  const server = new Server({ "grpc.max_receive_message_length": 64 << 20 });
  server.addService(externalProcessorService(), {
    Process: (call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      call.on("data", (m: ProcessingRequest) => {
        if (m.request === "request_headers") call.write({ request_headers: {} });
        else if (m.request === "request_body") call.write({ request_body: {} });
        else if (m.request === "response_headers") call.write({ response_headers: {} });
      });
      call.on("end", () => call.end());
    },
  });
  return bindAndWrap(server, "127.0.0.1:0");
}

/** The router's config: 4 workers that report KV events (they heartbeat in production; here they never go stale). */
function benchConfig(decisionTimeoutMs: number) {
  const base = testConfig();
  return testConfig({
    routing: { decisionTimeoutMs },
    limits: BIG_LIMITS,
    ...TOKENIZER_OVERRIDES,
    workers: withIngestTokens(base.workers),
    ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 3_600_000 },
  });
}

/**
 * What the replicas a warm prompt went to report once they have prefilled it: each the blocks of
 * the prompt the router recorded on it (routed there), stored — vLLM's KV events, here over the
 * ingest API as the plugin pushes them. Without them a prefix the policy spread over several
 * workers (the mix, 16 in flight) stayed speculative on all but one, its 2,048 entries refreshed
 * on every request, where a real replica confirms them ~100 ms after its first prefill.
 */
async function confirmHolders(router: RunningRouter, ingest: IngestTestClient, body: string, seqs: Map<string, number>): Promise<void> {
  const explained = await router.service.router.explain({ method: "POST", path: "/v1/chat/completions", body: Buffer.from(body), subset: null });
  const holders = [...explained.runs].filter(([, run]) => run > 0);
  if (holders.length === 0) throw new Error("the primed prompt is recorded on no worker");
  for (const [worker, run] of holders) {
    const seq = (seqs.get(worker) ?? 0) + 1;
    seqs.set(worker, seq);
    const reply = await ingest.push({ worker, seq, events: [{ stored: explained.keys.slice(0, run) }] });
    if (reply.status !== "APPLIED") throw new Error(`ingest answered ${reply.status}: ${reply.message}`);
  }
}

/**
 * The system prompts of SIZES tokens, counted by a tokenizer loaded for this alone and dropped
 * after, without a segment cache: this thread is the router's, and in production it holds no
 * tokenizer (a kept test tokenizer's 64 MiB segment cache held 29 MB of prompt strings here,
 * raising the heap every collection of the router's event loop sees).
 */
async function systemPrompts(config: RouterConfig): Promise<Record<number, string>> {
  const tokenizer = (await loadTokenizerRegistry(config.models, { segmentCacheBytes: 0 })).get("qwen3")!;
  const count = async (text: string) => {
    const p = parseOpenAiBody("/v1/completions", Buffer.from(JSON.stringify({ model: "qwen3", prompt: text })), { maxBodyBytes: 1 << 30, maxMessages: 1e9, maxPromptChars: 1e9 });
    if (!p.ok) throw new Error(p.failure.detail);
    const ids = await tokenizer.tokenize(p.value);
    if (!ids.ok) throw new Error(ids.failure.detail);
    return ids.value.length;
  };
  const systems: Record<number, string> = {};
  for (const size of SIZES) systems[size] = await systemPromptOf(size, count);
  return systems;
}

/** Builds a system prompt of about `tokens` tokens from real text, paragraphs separated by blank lines. */
async function systemPromptOf(tokens: number, count: (text: string) => Promise<number>): Promise<string> {
  const pool = realPrompts();
  let text = "";
  let i = 0;
  while ((await count(text)) < tokens) {
    const missing = tokens - (await count(text));
    text += pool[i++ % pool.length].slice(0, Math.max(200, missing * 4)) + "\n\n";
  }
  return text;
}

interface Measured extends ClientResult {
  loopDelayMs: { p99: number; max: number };
}

/** Runs a client command while watching this thread's event-loop delay (the router's or the floor's). */
async function watched(client: ClientThread, cmd: ClientCommand): Promise<Measured> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const result = await client.send<ClientResult>(cmd);
  h.disable();
  return { ...result, loopDelayMs: { p99: h.percentile(99) / 1e6, max: h.max / 1e6 } };
}

const median = (xs: readonly number[]) => percentile([...xs].sort((a, b) => a - b), 50);
const us = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(0));
const ms = (x: number) => x.toFixed(1);
const mib = () => process.memoryUsage().rss / 2 ** 20;

async function main(): Promise<void> {
  const load = loadavg()[0];
  const router = await startTestRouter(benchConfig(30_000));
  const ingest = new IngestTestClient(router.service.ingest!.server.address);
  const seqs = new Map<string, number>(); // each worker's batch sequence
  const noop = await startNoopServer();
  const systems = await systemPrompts(router.service.config);
  /** A warm prompt of `size` with a question of its own: explained to find the workers holding its prefix. */
  const seenBody = (size: number) => chat(systems[size], HISTORY, "a question the replica has seen?");
  const client = startClientThread();
  await client.send({ op: "prompts", systems, hugeText: realPrompts().join("\n\n").repeat(6).slice(0, 5_000_000) });
  const at = router.service.extProc.address;
  const run = (address: string, kind: BodyKind, size: number, total: number, concurrency = 1) => watched(client, { op: "run", address, bodies: [{ kind, size }], total, concurrency });

  const results: Record<string, unknown>[] = [];
  const rows: string[][] = [];
  const row = (label: string, scenario: string, r: Measured, extra = "") =>
    rows.push([label, scenario, String(r.roundTripUs.n), us(r.roundTripUs.p50), us(r.roundTripUs.p99), us(r.decisionUs?.p50), us(r.decisionUs?.p99), ms(r.loopDelayMs.max), extra || JSON.stringify(r.outcomes)]);

  for (const size of SIZES) {
    const n = ITERATIONS[size];
    // Prime the warm scenarios' caches (each tokenizer thread may serve them).
    await run(at, "warm-prefix", size, 4);
    await run(at, "warm-identical", size, 4);
    const seen = seenBody(size);
    await confirmHolders(router, ingest, seen, seqs);
    // Unmeasured warm-up (see WARMUP_ROUNDS), the floor's as well as the router's.
    for (const kind of ["warm-prefix", "warm-identical"] as const) await run(at, kind, size, WARMUP_ROUNDS * n);
    await confirmHolders(router, ingest, seen, seqs);
    await run(noop.address, "warm-identical", size, WARMUP_ROUNDS * n);
    for (const kind of ["cold", "warm-prefix", "warm-identical"] as const) {
      const r = await run(at, kind, size, n);
      if (kind === "cold") await quiet(router);
      results.push({ promptTokens: size, scenario: kind, ...r });
      row(`${size / 1000}k`, kind, r);
    }
    const floor = await run(noop.address, "warm-identical", size, n);
    results.push({ promptTokens: size, scenario: "no-op floor", ...floor });
    row(`${size / 1000}k`, "no-op floor", floor, "-");
  }

  // Throughput: a warm-prefix mix of the three sizes, 16 in flight.
  const mix = SIZES.map((size) => ({ kind: "warm-prefix" as const, size }));
  // Unmeasured warm-up of both, then MIX_PAIRS pairs (router, then floor), the target read on their
  // median ratio: one pair's floor alone swung from 935 to 1,307 req/s between runs.
  await watched(client, { op: "run", address: at, bodies: mix, total: WARMUP_ROUNDS * MIX_REQUESTS, concurrency: CONCURRENCY });
  for (const size of SIZES) await confirmHolders(router, ingest, seenBody(size), seqs);
  await watched(client, { op: "run", address: noop.address, bodies: mix, total: WARMUP_ROUNDS * MIX_REQUESTS, concurrency: CONCURRENCY });
  const mixRatios: number[] = [];
  for (let pair = 1; pair <= MIX_PAIRS; pair++) {
    const routed = await watched(client, { op: "run", address: at, bodies: mix, total: MIX_REQUESTS, concurrency: CONCURRENCY });
    const floorMix = await watched(client, { op: "run", address: noop.address, bodies: mix, total: MIX_REQUESTS, concurrency: CONCURRENCY });
    mixRatios.push(routed.perSecond / floorMix.perSecond);
    results.push({ scenario: `mix c=${CONCURRENCY}`, pair, ...routed }, { scenario: `mix c=${CONCURRENCY} no-op floor`, pair, ...floorMix });
    row("mix", `c=${CONCURRENCY} (${pair})`, routed, `${routed.perSecond.toFixed(0)} req/s`);
    row("mix", `c=${CONCURRENCY} no-op floor (${pair})`, floorMix, `${floorMix.perSecond.toFixed(0)} req/s; ratio ${mixRatios[pair - 1].toFixed(2)}`);
  }

  /**
   * Warm 1k alone, then beside cold 32k requests from a second client thread (`background`: two in
   * flight at all times, or paced); the next "alone" is measured on a quiet router (QUIET_TIMEOUT_MS).
   */
  const interference = async (background: { concurrency: number; perSecond?: number }, warm = 300) => {
    const alone = await run(at, "warm-prefix", 1_000, warm);
    const loader = startClientThread();
    await loader.send({ op: "prompts", systems, hugeText: "" });
    await loader.send({ op: "background", address: at, bodies: [{ kind: "cold", size: 32_000 }], ...background });
    const busy = await run(at, "warm-prefix", 1_000, warm);
    const coldDone = await loader.send<ClientResult>({ op: "stop-background" });
    await loader.close();
    await quiet(router);
    return { alone, busy, coldDone, ratio: busy.roundTripUs.p99 / alone.roundTripUs.p99 };
  };

  // Interference: two cold 32k requests in flight at all times, INTERFERENCE_PAIRS pairs, the target
  // read on their median ratio (the p99 of 300 requests is the third slowest: one pair's ratio
  // swings with whatever else the host ran).
  const ratios: number[] = [];
  for (let pair = 1; pair <= INTERFERENCE_PAIRS; pair++) {
    const { alone, busy, coldDone, ratio } = await interference({ concurrency: 2 });
    ratios.push(ratio);
    results.push({ scenario: "warm 1k alone", pair, ...alone }, { scenario: "warm 1k beside cold 32k", pair, ...busy, cold32k: coldDone });
    row("1k", `warm alone (${pair})`, alone);
    row("1k", `warm beside 2 cold 32k (${pair})`, busy, `p99 ${ratio.toFixed(2)}× alone; ${coldDone.roundTripUs.n} cold 32k done, p50 ${us(coldDone.roundTripUs.p50)} µs`);
  }
  // Two in flight at all times is as many cold 32k prompts a second as the router can take (60-100
  // on 2 cores: 2-3M new tokens/s, what dozens of GPUs prefill); paced rows show the ratio at lower
  // rates, arrivals not waiting for answers (information: the target is read on the pairs above).
  const paced: { perSecond: number; ratio: number; sent: number; skipped: number }[] = [];
  for (const perSecond of COLD_RATES) {
    const { alone, busy, coldDone, ratio } = await interference({ concurrency: 4, perSecond }, PACED_WARM);
    paced.push({ perSecond, ratio, sent: coldDone.roundTripUs.n, skipped: coldDone.skipped ?? 0 });
    results.push({ scenario: `warm 1k alone, paced ${perSecond}/s`, ...alone }, { scenario: `warm 1k beside cold 32k at ${perSecond}/s`, ...busy, cold32k: coldDone });
    row("1k", `warm alone (paced ${perSecond}/s)`, alone);
    row("1k", `warm beside cold 32k ${perSecond}/s`, busy, `p99 ${ratio.toFixed(2)}× alone; ${coldDone.roundTripUs.n} cold 32k done (${coldDone.skipped ?? 0} skipped: 4 in flight), p50 ${us(coldDone.roundTripUs.p50)} µs`);
  }

  // Huge tool description (issue 11): 5 MB of real text, new every time.
  const rssBefore = mib();
  const hugeOne = await run(at, "huge-tools", 0, 2);
  const rssAfterOne = mib();
  results.push({ scenario: "5 MB tool description, 30 s budget", ...hugeOne, rssMiB: { before: rssBefore, after: rssAfterOne } });
  row("5 MB", "tools, 30 s budget", hugeOne, `RSS ${rssBefore.toFixed(0)}→${rssAfterOne.toFixed(0)} MiB`);
  await noop.close();
  ingest.close();
  await router.stop();

  // The same four at once on a router with the default decision budget (150 ms).
  const defaults: RunningRouter = await startTestRouter(benchConfig(150));
  const rssDefaultsStart = mib();
  const hugeFour = await run(defaults.service.extProc.address, "huge-tools", 0, 8, 4);
  const rssDefaultsEnd = mib();
  await defaults.stop();
  await client.close();
  results.push({ scenario: "5 MB tool description ×4 at once, 150 ms budget", ...hugeFour, rssMiB: { before: rssDefaultsStart, after: rssDefaultsEnd } });
  row("5 MB", "tools ×4 at once, 150 ms", hugeFour, `${JSON.stringify(hugeFour.outcomes)} RSS ${rssDefaultsStart.toFixed(0)}→${rssDefaultsEnd.toFixed(0)} MiB`);

  console.log("\nDecision latency, µs (round trip = Envoy-sequence gRPC exchange headers+body, from a client thread; decision = router's own x-prefix-router-decision-us; loop = max event-loop delay of the server's thread, ms)\n");
  console.log(table(["prompt", "scenario", "n", "rt p50", "rt p99", "decision p50", "decision p99", "loop max", "outcomes"], rows));

  const find = (size: number | undefined, scenario: string) => results.find((r) => r.scenario === scenario && (size === undefined || r.promptTokens === size)) as unknown as Measured;
  const p50 = (size: number, scenario: string) => find(size, scenario).roundTripUs.p50 / 1000;
  const targets = [
    { target: "warm 8k p50 ≤ floor + 1 ms", value: p50(8_000, "warm-prefix") - p50(8_000, "no-op floor"), limit: 1, unit: "ms over floor" },
    { target: "warm 32k p50 ≤ floor + 2 ms", value: p50(32_000, "warm-prefix") - p50(32_000, "no-op floor"), limit: 2, unit: "ms over floor" },
    { target: "cold 32k p50 ≤ 40 ms", value: p50(32_000, "cold"), limit: 40, unit: "ms" },
    { target: "cold 8k p50 ≤ 12 ms", value: p50(8_000, "cold"), limit: 12, unit: "ms" },
    { target: `mix throughput c=${CONCURRENCY} ≥ 50% of floor (median of ${MIX_PAIRS} pairs: ${mixRatios.map((r) => r.toFixed(2)).join(", ")})`, value: median(mixRatios), limit: 0.5, unit: "of floor", atLeast: true },
    { target: `warm 1k p99 beside cold 32k ≤ 2× alone (median of ${INTERFERENCE_PAIRS} pairs: ${ratios.map((r) => r.toFixed(2)).join(", ")})`, value: median(ratios), limit: 2, unit: "× alone" },
  ].map((t) => ({ ...t, pass: t.atLeast ? t.value >= t.limit : t.value <= t.limit }));
  console.log("\nTargets (issue 12), ratios within this run:\n");
  for (const t of targets) console.log(`  ${t.pass ? "PASS" : "FAIL"}  ${t.target}: ${t.value.toFixed(2)} ${t.unit}`);
  console.log(`\nWarm 1k p99 beside paced cold 32k prompts, × alone: ${paced.map((p) => `${p.perSecond}/s ${p.ratio.toFixed(2)}`).join(", ")}`);

  const outDir = join(REPO_ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  const out = { command: "npm run bench:decision", nodeFlags: [...process.execArgv.filter((a) => a.startsWith("--") && !a.startsWith("--import")), ...(process.env.NODE_OPTIONS ? [`NODE_OPTIONS=${process.env.NODE_OPTIONS}`] : [])], date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage1m: { start: load, end: loadavg()[0] }, tokenizerThreads: (router.service.tokenizers as { size?: number }).size ?? "none (event loop)", bulkNice: router.service.config.tokenizerCache.bulkNice, largeLane: router.service.config.tokenizerCache.largeLane, targets, pacedInterference: paced, results };
  writeFileSync(join(outDir, OUT_FILE), JSON.stringify(out, null, 1));
  console.log(`\nwrote ${join(outDir, OUT_FILE)} (load average ${load.toFixed(1)} → ${loadavg()[0].toFixed(1)} on ${cpus().length} cores)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
