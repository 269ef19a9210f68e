/**
 * `prefix-router load --url URL [--baseline-url URL]`: sends a multi-turn chat workload through
 * Envoy and prints a live table — requests, cache hit rate (usage.prompt_tokens_details.cached_tokens
 * as the replicas report it), follow-ups that found their history cached, time to first token overall and per replica — then the same for a
 * baseline (e.g. the round-robin listener of `prefix-router stack`) with fresh conversations.
 */
import type { Command } from "commander";
import { LoadRun, type LoadOptions, type RunSummary } from "./load-run";

interface LoadFlags {
  url: string;
  baselineUrl?: string;
  model: string;
  requests: string;
  concurrency: string;
  turns: string;
  maxTokens: string;
  seed: string;
  systemPrompts: string;
  systemSentences: string;
  documentSentences: string;
  thinkMs: string;
  blockSize: string;
  json?: boolean;
}

export function registerLoad(program: Command): void {
  program
    .command("load")
    .description("send a multi-turn chat workload through Envoy and print requests, cache hit rate and TTFT per replica, live")
    .requiredOption("-u, --url <url>", "Envoy's listener, routed by prefix-router (e.g. http://127.0.0.1:8080)")
    .option("-b, --baseline-url <url>", "a listener to compare with, sent the same kind of workload afterwards (stack: http://127.0.0.1:8081, round-robin)")
    .option("--model <name>", "model name in the requests", "qwen3")
    .option("-n, --requests <n>", "requests per run", "240")
    .option("-c, --concurrency <n>", "users, each sending its conversations turn by turn", "8")
    .option("--turns <n>", "turns per conversation", "8")
    .option("--max-tokens <n>", "max_tokens per request", "48")
    .option("--seed <n>", "workload seed (the baseline uses seed + 1: no text in common)", "1")
    .option("--system-prompts <n>", "distinct system prompts the conversations share", "4")
    .option("--system-sentences <n>", "sentences per system prompt (~15 tokens each)", "40")
    .option("--document-sentences <n>", "sentences of the document each conversation's first turn brings (~15 tokens each)", "400")
    .option("--think-ms <ms>", "each user pauses up to this long between turns", "200")
    .option("--block-size <n>", "the replicas' KV block size (a follow-up found its history when every whole block of the previous turn's prompt was cached)", "16")
    .option("--json", "print the final summaries as JSON instead of a table")
    .action((flags: LoadFlags) => load(flags));
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name}: expected a positive integer, got ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return n;
}

async function load(flags: LoadFlags): Promise<void> {
  const base: Omit<LoadOptions, "url" | "seed"> = {
    model: flags.model,
    requests: positive("requests", flags.requests),
    concurrency: positive("concurrency", flags.concurrency),
    turns: positive("turns", flags.turns),
    maxTokens: positive("max-tokens", flags.maxTokens),
    systemPrompts: positive("system-prompts", flags.systemPrompts),
    systemSentences: positive("system-sentences", flags.systemSentences),
    documentSentences: Math.max(0, Number(flags.documentSentences) || 0),
    thinkMs: Math.max(0, Number(flags.thinkMs) || 0),
    blockSize: positive("block-size", flags.blockSize),
  };
  const seed = Number(flags.seed) || 1;
  const runs = [new LoadRun(`prefix-router ${flags.url}`, { ...base, url: flags.url.replace(/\/$/, ""), seed })];
  if (flags.baselineUrl) runs.push(new LoadRun(`baseline ${flags.baselineUrl}`, { ...base, url: flags.baselineUrl.replace(/\/$/, ""), seed: seed + 1 }));

  const live = process.stdout.isTTY && !flags.json;
  let drawn = 0;
  const draw = () => {
    const text = renderRuns(runs.map((r) => ({ name: r.name, summary: r.summary(), total: base.requests })));
    if (live && drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
    if (live) process.stdout.write(`${text}\n`);
    drawn = text.split("\n").length;
  };
  const timer = live ? setInterval(draw, 1000) : undefined;
  for (const run of runs) await run.run();
  clearInterval(timer);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(runs.map((r) => ({ name: r.name, ...r.summary() })), null, 1)}\n`);
    return;
  }
  if (live) draw();
  else process.stdout.write(`${renderRuns(runs.map((r) => ({ name: r.name, summary: r.summary(), total: base.requests })))}\n`);
  if (runs.some((r) => r.summary().errors > 0)) process.exitCode = 1;
}

const pct = (x: number | null) => (x === null ? "-" : `${(100 * x).toFixed(1)}%`);
const ms = (x: number | null) => (x === null ? "-" : x.toFixed(0));

/** The table: one line per run, then one per replica under it. */
export function renderRuns(rows: ReadonlyArray<{ name: string; summary: RunSummary; total: number }>): string {
  const header = ["run", "requests", "errors", "hit rate", "history cached", "TTFT p50 ms", "TTFT p90 ms"];
  const lines: string[][] = [];
  for (const { name, summary: s, total } of rows) {
    lines.push([name, `${s.requests}/${total}`, String(s.errors), pct(s.hitRate), pct(s.historyHitRate), ms(s.ttftP50), ms(s.ttftP90)]);
    for (const r of s.replicas) lines.push([`  ${r.id}`, String(r.requests), "", pct(r.hitRate), "", ms(r.ttftP50), ""]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l: string[]) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  // What the router said about each decision (its debug headers), under the table.
  const decided = rows
    .filter(({ summary }) => Object.keys(summary.decisions).length > 0)
    .map(({ name, summary }) => `${name} decisions: ${Object.entries(summary.decisions).map(([d, n]) => `${d} ${n}`).join(", ")}`);
  return [fmt(header), ...lines.map(fmt), ...decided].join("\n");
}
