/**
 * Decision latency of the whole request path through the real ext_proc gRPC server (BUFFERED
 * mode, Envoy's message sequence), for 1k / 8k / 32k-token chat prompts:
 *   cold            every piece of the prompt new (a marker in every paragraph: nothing cached)
 *   warm-prefix     shared system prompt and history cached, new last user turn (the common case)
 *   warm-identical  the same request again
 * and the no-op floor: the same gRPC stack answering without doing anything. Then, under load:
 *   throughput      16 requests in flight, a 1k/8k/32k warm-prefix mix, against the floor's
 *   interference    warm 1k p99 alone and while two cold 32k requests run at all times
 *   huge tools      a 5 MB tool description (issue 11): decision time, RSS, event-loop delay —
 *                   once with a 30 s budget, then 4 at once under the default 150 ms budget
 * Every row records the event loop's delay (perf_hooks.monitorEventLoopDelay) while it ran.
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
import { EnvoyExtProcClient } from "../support/envoy-ext-proc-client";
import { mainThreadTokenizers, realPrompts, REPO_ROOT, startTestRouter, testConfig, type RunningRouter } from "../support/router-fixture";
import { summarize, type Summary } from "../../src/bench/metrics/stats";
import { table } from "../../src/bench/report/console-report";

const SIZES = [1_000, 8_000, 32_000];
const ITERATIONS: Record<number, number> = { 1_000: 300, 8_000: 150, 32_000: 40 };
const CONCURRENCY = 16;
const MIX_REQUESTS = 480;
const BIG_LIMITS = { maxBodyBytes: 64 << 20, maxPromptChars: 10_000_000 };

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

/** The text with a marker in every paragraph: no piece of it was ever tokenized before. */
const fresh = (text: string, k: number) => `(${k}) ` + text.replaceAll("\n\n", `\n\n(${k}) `);

function body(system: string, history: string[], user: string, tools?: unknown[]): string {
  const messages = [{ role: "system", content: system }];
  history.forEach((h, i) => messages.push({ role: i % 2 ? "assistant" : "user", content: h }));
  messages.push({ role: "user", content: user });
  return JSON.stringify({ model: "qwen3", messages, ...(tools ? { tools } : {}) });
}

interface Measured {
  roundTripUs: Summary;
  decisionUs: Summary | null;
  outcomes: Record<string, number>;
  loopDelayMs: { p99: number; max: number };
}

/** Watches the event loop's delay while `work` runs. */
async function watchingLoop<T>(work: () => Promise<T>): Promise<T & { loopDelayMs: { p99: number; max: number } }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const result = await work();
  h.disable();
  return { ...result, loopDelayMs: { p99: h.percentile(99) / 1e6, max: h.max / 1e6 } };
}

async function one(client: EnvoyExtProcClient, b: string, rt: number[], dec: number[], outcomes: Record<string, number>): Promise<void> {
  const t0 = process.hrtime.bigint();
  const ex = await client.process({ path: "/v1/chat/completions", body: b, messageTimeoutMs: 60_000 });
  rt.push(Number(process.hrtime.bigint() - t0) / 1000);
  const d = ex.upstreamHeaders.get("x-prefix-router-decision-us");
  if (d) dec.push(Number(d));
  const o = ex.upstreamHeaders.get("x-prefix-router-decision") ?? "none";
  outcomes[o] = (outcomes[o] ?? 0) + 1;
  await ex.complete(200);
}

/** `n` requests one after another. */
function measure(client: EnvoyExtProcClient, bodies: () => string, n: number): Promise<Measured> {
  return watchingLoop(async () => {
    const rt: number[] = [];
    const dec: number[] = [];
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < n; i++) await one(client, bodies(), rt, dec, outcomes);
    return { roundTripUs: summarize(rt), decisionUs: dec.length ? summarize(dec) : null, outcomes };
  });
}

/** `total` requests with `concurrency` in flight; requests per second. */
function throughput(client: EnvoyExtProcClient, bodies: () => string, total: number, concurrency: number): Promise<Measured & { perSecond: number }> {
  return watchingLoop(async () => {
    const rt: number[] = [];
    const dec: number[] = [];
    const outcomes: Record<string, number> = {};
    let started = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (started < total) {
          started++;
          await one(client, bodies(), rt, dec, outcomes);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { roundTripUs: summarize(rt), decisionUs: dec.length ? summarize(dec) : null, outcomes, perSecond: total / seconds };
  });
}

const us = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(0));
const ms = (x: number) => x.toFixed(1);
const mib = () => process.memoryUsage().rss / 2 ** 20;

async function main(): Promise<void> {
  const load = loadavg()[0];
  const router = await startTestRouter(testConfig({ routing: { decisionTimeoutMs: 30_000 }, limits: BIG_LIMITS }));
  const noop = await startNoopServer();
  const noopClient = new EnvoyExtProcClient(noop.address);
  const tokenizer = (await mainThreadTokenizers(router.service.config)).get("qwen3")!;
  const count = async (text: string) => {
    const p = parseOpenAiBody("/v1/completions", Buffer.from(JSON.stringify({ model: "qwen3", prompt: text })), { maxBodyBytes: 1 << 30, maxMessages: 1e9, maxPromptChars: 1e9 });
    if (!p.ok) throw new Error(p.failure.detail);
    const ids = await tokenizer.tokenize(p.value);
    if (!ids.ok) throw new Error(ids.failure.detail);
    return ids.value.length;
  };

  const results: Record<string, unknown>[] = [];
  const rows: string[][] = [];
  const row = (label: string, scenario: string, r: Measured, extra = "") =>
    rows.push([label, scenario, String(r.roundTripUs.n), us(r.roundTripUs.p50), us(r.roundTripUs.p99), us(r.decisionUs?.p50), us(r.decisionUs?.p99), ms(r.loopDelayMs.max), extra || JSON.stringify(r.outcomes)]);
  const systems = new Map<number, string>();
  const history = ["What does this cover?", "It covers the material above in detail."];
  let k = 0;
  const scenariosOf = (size: number): Record<string, () => string> => {
    const system = systems.get(size)!;
    return {
      cold: () => body(fresh(system, ++k), history.map((h) => `${h} ${k}`), `question ${k}`),
      "warm-prefix": () => body(system, history, `a new question number ${++k}?`),
      "warm-identical": () => body(system, history, "the same question"),
    };
  };

  for (const size of SIZES) {
    systems.set(size, await systemPromptOf(size, count));
    const n = ITERATIONS[size];
    const scenarios = scenariosOf(size);
    // Prime the warm scenarios' caches (both tokenizer threads may serve them).
    await measure(router.client, scenarios["warm-prefix"], 4);
    await measure(router.client, scenarios["warm-identical"], 4);
    for (const [name, make] of Object.entries(scenarios)) {
      const r = await measure(router.client, make, n);
      results.push({ promptTokens: size, scenario: name, ...r });
      row(`${size / 1000}k`, name, r);
    }
    const floor = await measure(noopClient, scenarios["warm-identical"], n);
    results.push({ promptTokens: size, scenario: "no-op floor", ...floor });
    row(`${size / 1000}k`, "no-op floor", floor, "-");
  }

  // Throughput: a warm-prefix mix of the three sizes, 16 in flight.
  const mixes = SIZES.map((s) => scenariosOf(s)["warm-prefix"]);
  let m = 0;
  const mix = () => mixes[m++ % mixes.length]();
  const routed = await throughput(router.client, mix, MIX_REQUESTS, CONCURRENCY);
  const floorMix = await throughput(noopClient, mix, MIX_REQUESTS, CONCURRENCY);
  results.push({ scenario: `mix c=${CONCURRENCY}`, ...routed }, { scenario: `mix c=${CONCURRENCY} no-op floor`, ...floorMix });
  row("mix", `c=${CONCURRENCY}`, routed, `${routed.perSecond.toFixed(0)} req/s`);
  row("mix", `c=${CONCURRENCY} no-op floor`, floorMix, `${floorMix.perSecond.toFixed(0)} req/s`);

  // Interference: warm 1k alone, then while two cold 32k requests run at all times.
  const warm1k = scenariosOf(1_000)["warm-prefix"];
  const alone = await measure(router.client, warm1k, 300);
  let stop = false;
  const cold32k = scenariosOf(32_000).cold;
  const background = Array.from({ length: 2 }, async () => {
    let coldRuns = 0;
    while (!stop) {
      await one(router.client, cold32k(), [], [], {});
      coldRuns++;
    }
    return coldRuns;
  });
  const busy = await measure(router.client, warm1k, 300);
  stop = true;
  const coldRuns = (await Promise.all(background)).reduce((a, b) => a + b, 0);
  results.push({ scenario: "warm 1k alone", ...alone }, { scenario: "warm 1k beside cold 32k", ...busy, cold32kRequests: coldRuns });
  row("1k", "warm alone", alone);
  row("1k", "warm beside 2 cold 32k", busy, `${coldRuns} cold 32k done`);

  // Huge tool description (issue 11): 5 MB of real text, new every time.
  const huge = (k: number) =>
    body("You are a helpful assistant.", [], "Which tool fits?", [
      { type: "function", function: { name: "lookup", description: fresh(realPrompts().join("\n\n").repeat(6).slice(0, 5_000_000), k), parameters: { type: "object", properties: {} } } },
    ]);
  const rssBefore = mib();
  const hugeOne = await measure(router.client, () => huge(++k), 2);
  const rssAfterOne = mib();
  results.push({ scenario: "5 MB tool description, 30 s budget", ...hugeOne, rssMiB: { before: rssBefore, after: rssAfterOne } });
  row("5 MB", "tools, 30 s budget", hugeOne, `RSS ${rssBefore.toFixed(0)}→${rssAfterOne.toFixed(0)} MiB`);

  noopClient.close();
  await noop.close();
  await router.stop();

  // The same four at once on a router with the default decision budget (150 ms).
  const defaults: RunningRouter = await startTestRouter(testConfig({ limits: BIG_LIMITS }));
  const rssDefaultsStart = mib();
  const hugeFour = await throughput(defaults.client, () => huge(++k), 8, 4);
  const rssDefaultsEnd = mib();
  await defaults.stop();
  results.push({ scenario: "5 MB tool description ×4 at once, 150 ms budget", ...hugeFour, rssMiB: { before: rssDefaultsStart, after: rssDefaultsEnd } });
  row("5 MB", "tools ×4 at once, 150 ms", hugeFour, `${JSON.stringify(hugeFour.outcomes)} RSS ${rssDefaultsStart.toFixed(0)}→${rssDefaultsEnd.toFixed(0)} MiB`);

  console.log("\nDecision latency, µs (round trip = Envoy-sequence gRPC exchange headers+body; decision = router's own x-prefix-router-decision-us; loop = max event-loop delay, ms)\n");
  console.log(table(["prompt", "scenario", "n", "rt p50", "rt p99", "decision p50", "decision p99", "loop max", "outcomes"], rows));

  const find = (size: number | undefined, scenario: string) => results.find((r) => r.scenario === scenario && (size === undefined || r.promptTokens === size)) as unknown as Measured & { perSecond?: number };
  const p50 = (size: number, scenario: string) => find(size, scenario).roundTripUs.p50 / 1000;
  const targets = [
    { target: "warm 8k p50 ≤ floor + 1 ms", value: p50(8_000, "warm-prefix") - p50(8_000, "no-op floor"), limit: 1, unit: "ms over floor" },
    { target: "warm 32k p50 ≤ floor + 2 ms", value: p50(32_000, "warm-prefix") - p50(32_000, "no-op floor"), limit: 2, unit: "ms over floor" },
    { target: "cold 32k p50 ≤ 40 ms", value: p50(32_000, "cold"), limit: 40, unit: "ms" },
    { target: "cold 8k p50 ≤ 12 ms", value: p50(8_000, "cold"), limit: 12, unit: "ms" },
    { target: `mix throughput c=${CONCURRENCY} ≥ 50% of floor`, value: routed.perSecond / floorMix.perSecond, limit: 0.5, unit: "of floor", atLeast: true },
    { target: "warm 1k p99 beside cold 32k ≤ 2× alone", value: busy.roundTripUs.p99 / alone.roundTripUs.p99, limit: 2, unit: "× alone" },
  ].map((t) => ({ ...t, pass: t.atLeast ? t.value >= t.limit : t.value <= t.limit }));
  console.log("\nTargets (issue 12), ratios within this run:\n");
  for (const t of targets) console.log(`  ${t.pass ? "PASS" : "FAIL"}  ${t.target}: ${t.value.toFixed(2)} ${t.unit}`);

  const outDir = join(REPO_ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  const out = { command: "npm run bench:decision", date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage1m: { start: load, end: loadavg()[0] }, tokenizerThreads: router.service.tokenizers.size, targets, results };
  writeFileSync(join(outDir, "decision.json"), JSON.stringify(out, null, 1));
  console.log(`\nwrote ${join(outDir, "decision.json")} (load average ${load.toFixed(1)} → ${loadavg()[0].toFixed(1)} on ${cpus().length} cores)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
