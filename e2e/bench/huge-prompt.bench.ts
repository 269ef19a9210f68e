/**
 * What huge prompts cost the router, one request after another, each new (nothing cached):
 *   5 MB tools, defaults       a 5 MB tool description under the default limits (maxPromptChars
 *                              2M; the test fixture's 10 s decision budget): routed by the
 *                              fallback before any thread sees it
 *   1.85 MB tools, defaults    just under the limit, the default 150 ms decision budget
 *   1.85 MB tools, 30 s budget just under the limit, tokenized to the end every time (the worst
 *                              case for the tokenizer threads' native memory); then 4 at once
 *   10k messages beside        two 10,000-message chats in flight at all times (one-word messages:
 *                              the template's cost, not the text's), 150 ms budget, while small
 *                              warm chats are timed: do they keep their tokenizer threads?
 * For each: decision time (the router's x-prefix-router-decision-us), outcomes, and the process RSS
 * after every request (the Rust tokenizer's native memory is part of it; worker threads share the
 * process). Writes bench-results/huge-prompt.json.
 * Run: npx tsx --expose-gc e2e/bench/huge-prompt.bench.ts [requests per scenario, default 20] (BENCH_ONLY=30 s: one scenario)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import type { ClientResult } from "./decision-client";
import { startClientThread } from "./client-thread";
import { realPrompts, REPO_ROOT, startTestRouter, testConfig } from "../support/router-fixture";

const REQUESTS = Number(process.argv[2] ?? 20);
const THREADS = process.env.BENCH_TOKENIZER_THREADS ? { tokenizerCache: { threads: Number(process.env.BENCH_TOKENIZER_THREADS) } } : {};


const rssMiB = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round(process.memoryUsage().rss / 2 ** 20);
};

async function scenario(name: string, chars: number, routing: Record<string, unknown>, concurrency = 1) {
  const router = await startTestRouter(testConfig({ routing, tokenizerCache: { threads: 2 }, ...THREADS }));
  const client = startClientThread();
  await client.send({ op: "prompts", systems: {}, hugeText: realPrompts().join("\n\n").repeat(8).slice(0, chars) });
  const rss: number[] = [rssMiB()];
  const decisionMs: number[] = [];
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < REQUESTS; i += concurrency) {
    const r = await client.send<ClientResult>({ op: "run", address: router.service.extProc.address, bodies: [{ kind: "huge-tools", size: 0 }], total: concurrency, concurrency });
    for (const [k, v] of Object.entries(r.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v;
    decisionMs.push((r.decisionUs?.p50 ?? NaN) / 1000);
    rss.push(rssMiB());
  }
  await client.close();
  await router.stop();
  const sorted = [...decisionMs].sort((a, b) => a - b);
  const result = {
    scenario: name,
    requests: REQUESTS,
    outcomes,
    decisionMs: { p50: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] },
    rssMiB: { start: rss[0], afterFirst: rss[1], end: rss[rss.length - 1], max: Math.max(...rss), curve: rss },
  };
  console.log(`${name}: ${JSON.stringify(outcomes)} decision p50 ${result.decisionMs.p50.toFixed(1)} ms max ${result.decisionMs.max.toFixed(1)} ms; RSS ${rss[0]} → ${rss[1]} (first) → ${rss[rss.length - 1]} MiB (max ${result.rssMiB.max})`);
  return result;
}

/** Small warm chats timed while two 10,000-message chats are in flight at all times. */
async function manyMessagesBeside() {
  const router = await startTestRouter(testConfig({ routing: { decisionTimeoutMs: 150 }, tokenizerCache: { threads: 2 }, ...THREADS }));
  const fore = startClientThread();
  const back = startClientThread();
  const systems = { 1: realPrompts().slice(0, 8).join("\n\n") };
  await fore.send({ op: "prompts", systems, hugeText: "" });
  await back.send({ op: "prompts", systems, hugeText: "" });
  const at = router.service.extProc.address;
  const small = (total: number) => fore.send<ClientResult>({ op: "run", address: at, bodies: [{ kind: "warm-prefix", size: 1 }], total, concurrency: 1 });
  await small(10);
  const alone = await small(REQUESTS * 5);
  await back.send({ op: "background", address: at, bodies: [{ kind: "many-messages", size: 10_000 }], concurrency: 2 });
  const beside = await small(REQUESTS * 5);
  const big = await back.send<ClientResult>({ op: "stop-background" });
  await fore.close();
  await back.close();
  await router.stop();
  const summary = (r: ClientResult) => ({ outcomes: r.outcomes, decisionMs: { p50: (r.decisionUs?.p50 ?? NaN) / 1000, p99: (r.decisionUs?.p99 ?? NaN) / 1000 } });
  const result = { scenario: "small warm chats beside two 10k-message chats, 150 ms budget", alone: summary(alone), beside: summary(beside), manyMessages: summary(big) };
  console.log(`${result.scenario}: alone ${JSON.stringify(result.alone)}; beside ${JSON.stringify(result.beside)}; the 10k-message chats ${JSON.stringify(result.manyMessages)}`);
  return result;
}

async function main(): Promise<void> {
  const load = loadavg()[0];
  const scenarios: [string, number, Record<string, unknown>, number?][] = [
    ["5 MB tools, default limits", 5_000_000, {}],
    ["1.85 MB tools, 150 ms budget", 1_850_000, { decisionTimeoutMs: 150 }],
    ["1.85 MB tools, 30 s budget", 1_850_000, { decisionTimeoutMs: 30_000 }],
    ["1.85 MB tools ×4 at once, 30 s budget", 1_850_000, { decisionTimeoutMs: 30_000 }, 4],
  ];
  // BENCH_ONLY=text runs only the scenarios whose name contains it ("10k messages": the last one).
  const results: Record<string, unknown>[] = [];
  for (const [name, chars, routing, concurrency] of scenarios) if (name.includes(process.env.BENCH_ONLY ?? "")) results.push(await scenario(name, chars, routing, concurrency));
  if ("10k messages".includes(process.env.BENCH_ONLY ?? "")) results.push(await manyMessagesBeside());
  const outDir = join(REPO_ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  const out = { command: `npx tsx --expose-gc e2e/bench/huge-prompt.bench.ts ${REQUESTS}`, date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage1m: { start: load, end: loadavg()[0] }, results };
  writeFileSync(join(outDir, process.env.BENCH_OUT ?? "huge-prompt.json"), JSON.stringify(out, null, 1));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
