/**
 * What huge prompts cost the router, one request after another, each new (nothing cached):
 *   5 MB tools, defaults       a 5 MB tool description under the default limits (maxPromptChars
 *                              2M): routed by the fallback before any thread sees it
 *   1.85 MB tools, defaults    just under the limit, the default 150 ms decision budget
 *   1.85 MB tools, 30 s budget just under the limit, tokenized to the end every time (the worst
 *                              case for the tokenizer threads' native memory); then 4 at once
 * For each: decision time (the router's x-prefix-router-decision-us), outcomes, and the process RSS
 * after every request (the Rust tokenizer's native memory is part of it; worker threads share the
 * process). Writes bench-results/huge-prompt.json.
 * Run: npx tsx --expose-gc e2e/bench/huge-prompt.bench.ts [requests per scenario, default 20] (BENCH_ONLY=30 s: one scenario)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { ClientCommand, ClientResult } from "./decision-client";
import { realPrompts, REPO_ROOT, startTestRouter, testConfig } from "../support/router-fixture";

const REQUESTS = Number(process.argv[2] ?? 20);
const THREADS = process.env.BENCH_TOKENIZER_THREADS ? { tokenizerCache: { threads: Number(process.env.BENCH_TOKENIZER_THREADS) } } : {};

function startClient() {
  const entry = join(__dirname, "decision-client.ts");
  const worker = new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs/api"))}).register(); require(${JSON.stringify(entry)});`, { eval: true });
  const send = <T>(cmd: ClientCommand) => new Promise<T>((resolve) => (worker.once("message", resolve), worker.postMessage(cmd)));
  return { send, close: () => worker.terminate() };
}

const rssMiB = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round(process.memoryUsage().rss / 2 ** 20);
};

async function scenario(name: string, chars: number, routing: Record<string, unknown>, concurrency = 1) {
  const router = await startTestRouter(testConfig({ routing, tokenizerCache: { threads: 2 }, ...THREADS }));
  const client = startClient();
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

async function main(): Promise<void> {
  const load = loadavg()[0];
  const scenarios: [string, number, Record<string, unknown>, number?][] = [
    ["5 MB tools, default limits", 5_000_000, {}],
    ["1.85 MB tools, 150 ms budget", 1_850_000, { decisionTimeoutMs: 150 }],
    ["1.85 MB tools, 30 s budget", 1_850_000, { decisionTimeoutMs: 30_000 }],
    ["1.85 MB tools ×4 at once, 30 s budget", 1_850_000, { decisionTimeoutMs: 30_000 }, 4],
  ];
  // BENCH_ONLY=text runs only the scenarios whose name contains it.
  const results = [];
  for (const [name, chars, routing, concurrency] of scenarios) if (name.includes(process.env.BENCH_ONLY ?? "")) results.push(await scenario(name, chars, routing, concurrency));
  const outDir = join(REPO_ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  const out = { command: `npx tsx --expose-gc e2e/bench/huge-prompt.bench.ts ${REQUESTS}`, date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage1m: { start: load, end: loadavg()[0] }, results };
  writeFileSync(join(outDir, process.env.BENCH_OUT ?? "huge-prompt.json"), JSON.stringify(out, null, 1));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
