/**
 * Decision latency of the whole request path through the real ext_proc gRPC server (BUFFERED
 * mode, Envoy's message sequence), for 1k / 8k / 32k-token chat prompts:
 *   cold            every segment new (tokenize everything, miss)
 *   warm-prefix     shared system prompt and history cached, new last user turn (the common case)
 *   warm-identical  the same request again
 * and the no-op floor: the same gRPC stack answering without doing anything.
 * Prints a table and writes bench-results/decision.json.   Run: npm run bench:decision
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Server, type ServerDuplexStream } from "@grpc/grpc-js";
import { bindAndWrap } from "../../src/common/grpc-server";
import type { ProcessingRequest, ProcessingResponse } from "../../src/extproc/messages";
import { externalProcessorService } from "../../src/extproc/proto";
import { parseOpenAiBody } from "../../src/request/parse-openai-body";
import { EnvoyExtProcClient } from "../support/envoy-ext-proc-client";
import { realPrompts, REPO_ROOT, startTestRouter, testConfig } from "../support/router-fixture";
import { summarize, type Summary } from "../../src/bench/metrics/stats";
import { table } from "../../src/bench/report/console-report";

const SIZES = [1_000, 8_000, 32_000];
const ITERATIONS: Record<number, number> = { 1_000: 300, 8_000: 150, 32_000: 40 };

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

/** Builds a system prompt of about `tokens` tokens from real text. */
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

function body(system: string, history: string[], user: string): string {
  const messages = [{ role: "system", content: system }];
  history.forEach((h, i) => messages.push({ role: i % 2 ? "assistant" : "user", content: h }));
  messages.push({ role: "user", content: user });
  return JSON.stringify({ model: "qwen3", messages });
}

async function measure(client: EnvoyExtProcClient, bodies: () => string, n: number): Promise<{ roundTripUs: Summary; decisionUs: Summary | null; outcomes: Record<string, number> }> {
  const rt: number[] = [];
  const dec: number[] = [];
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const b = bodies();
    const t0 = process.hrtime.bigint();
    const ex = await client.process({ path: "/v1/chat/completions", body: b, messageTimeoutMs: 30_000 });
    rt.push(Number(process.hrtime.bigint() - t0) / 1000);
    const d = ex.upstreamHeaders.get("x-prefix-router-decision-us");
    if (d) dec.push(Number(d));
    const o = ex.upstreamHeaders.get("x-prefix-router-decision") ?? "none";
    outcomes[o] = (outcomes[o] ?? 0) + 1;
    await ex.complete(200);
  }
  return { roundTripUs: summarize(rt), decisionUs: dec.length ? summarize(dec) : null, outcomes };
}

const us = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(0));

async function main(): Promise<void> {
  const router = await startTestRouter(testConfig({ routing: { decisionTimeoutMs: 30_000 }, limits: { maxBodyBytes: 64 << 20, maxPromptChars: 10_000_000 } }));
  const noop = await startNoopServer();
  const noopClient = new EnvoyExtProcClient(noop.address);
  const tokenizer = router.service.tokenizers.get("qwen3")!;
  const count = async (text: string) => {
    const p = parseOpenAiBody("/v1/completions", Buffer.from(JSON.stringify({ model: "qwen3", prompt: text })), { maxBodyBytes: 1 << 30, maxMessages: 1e9, maxPromptChars: 1e9 });
    if (!p.ok) throw new Error(p.failure.detail);
    const ids = await tokenizer.tokenize(p.value);
    if (!ids.ok) throw new Error(ids.failure.detail);
    return ids.value.length;
  };

  const results: Record<string, unknown>[] = [];
  const rows: string[][] = [];
  for (const size of SIZES) {
    const system = await systemPromptOf(size, count);
    const history = ["What does this cover?", "It covers the material above in detail."];
    const n = ITERATIONS[size];
    let k = 0;
    const scenarios: Record<string, () => string> = {
      cold: () => body(`${k++} ${Math.random()} ${system}`, history.map((h) => `${h} ${k}`), `question ${k}`),
      "warm-prefix": () => body(system, history, `a new question number ${k++}?`),
      "warm-identical": () => body(system, history, "the same question"),
    };
    // Prime the warm scenarios' caches once.
    await measure(router.client, scenarios["warm-prefix"], 2);
    await measure(router.client, scenarios["warm-identical"], 2);
    for (const [name, make] of Object.entries(scenarios)) {
      const r = await measure(router.client, make, n);
      results.push({ promptTokens: size, scenario: name, ...r });
      rows.push([`${size / 1000}k`, name, String(n), us(r.roundTripUs.p50), us(r.roundTripUs.p99), us(r.decisionUs?.p50), us(r.decisionUs?.p99), JSON.stringify(r.outcomes)]);
    }
    const floor = await measure(noopClient, scenarios["warm-identical"], n);
    results.push({ promptTokens: size, scenario: "no-op floor", ...floor });
    rows.push([`${size / 1000}k`, "no-op floor", String(n), us(floor.roundTripUs.p50), us(floor.roundTripUs.p99), "-", "-", "-"]);
  }
  console.log("\nDecision latency, µs (round trip = Envoy-sequence gRPC exchange headers+body; decision = router's own x-prefix-router-decision-us)\n");
  console.log(table(["prompt", "scenario", "n", "rt p50", "rt p99", "decision p50", "decision p99", "outcomes"], rows));
  const outDir = join(REPO_ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "decision.json"), JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: require("node:os").cpus().length, results }, null, 1));
  console.log(`\nwrote ${join(outDir, "decision.json")}`);
  noopClient.close();
  await noop.close();
  await router.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
