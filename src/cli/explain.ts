/**
 * `prefix-router explain --config FILE --body request.json [--path …]`: renders, tokenizes and
 * hashes a request exactly as the router would, queries the configured store (a running router's
 * admin port for the embedded map; Redis directly), and prints the blocks, each worker's match,
 * load and verdict, and the pick with its reason — without sending traffic.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadConfigFile } from "../config/load-config";
import type { RouterConfig } from "../config/schema";
import { RequestRouter, type Explanation } from "../router/request-router";
import { isOverloaded } from "../routing/sticky-least-loaded";
import { createCacheIndex } from "../state/create-cache-index";
import { MemoryCacheIndex } from "../state/memory-cache-index";
import { loadTokenizerRegistry } from "../tokenize/tokenizer-registry";
import { AdminClient } from "./admin-client";
import { withConfigErrors } from "./config-errors";

interface ExplainOptions {
  config: string;
  body: string;
  path: string;
  admin?: string;
  json?: boolean;
  showText?: boolean;
}

export function registerExplain(program: Command): void {
  program
    .command("explain")
    .description("show how a request would be routed (blocks, per-worker match and load, the pick and why) without sending it")
    .requiredOption("-c, --config <file>", "the router's config file")
    .requiredOption("-b, --body <file>", "request body (JSON), '-' for stdin")
    .option("-p, --path <path>", "request path", "/v1/chat/completions")
    .option("-a, --admin <url>", "a running router's admin URL (default: http://<admin.listen> from the config)")
    .option("--json", "machine-readable output")
    .option("--show-text", "print the rendered prompt text")
    .action((opts: ExplainOptions) => withConfigErrors(() => explain(opts)));
}

async function explain(opts: ExplainOptions): Promise<void> {
  const config = loadConfigFile(opts.config);
  const body = readFileSync(opts.body === "-" ? 0 : opts.body);
  const { index, loads, source, close } = await stateSource(config, opts.admin);
  try {
    const tokenizers = await loadTokenizerRegistry(config.models, { segmentCacheBytes: 0 });
    const router = new RequestRouter({ config, index, tokenizers });
    const e = await router.explain({ method: "POST", path: opts.path, body, subset: null }, loads);
    if (opts.json) process.stdout.write(JSON.stringify(toJson(e, source), null, 1) + "\n");
    else process.stdout.write(render(e, source, config, opts.showText ?? false));
  } finally {
    await close();
  }
}

/** Where cache state and load come from: a running router's admin port, Redis, or nowhere. */
async function stateSource(config: RouterConfig, adminUrl: string | undefined) {
  const admin = adminUrl ? new AdminClient(adminUrl) : config.admin ? AdminClient.fromListen(config.admin.listen) : null;
  if (config.store.kind !== "memory") {
    const index = createCacheIndex(config.store);
    return { index, loads: undefined, source: `store ${config.store.kind}`, close: () => index.close() };
  }
  if (admin) {
    const { workers } = await admin.workers();
    return { index: admin.lookupIndex(), loads: new Map(workers.map((w) => [w.id, w.inFlight])), source: "the running router's admin port", close: async () => undefined };
  }
  const empty = new MemoryCacheIndex({ maxEntries: 1 });
  return { index: empty, loads: undefined, source: "an empty map (no admin.listen in the config and no --admin: the embedded map lives in the running router)", close: () => empty.close() };
}

function render(e: Explanation, source: string, config: RouterConfig, showText: boolean): string {
  const out: string[] = [];
  out.push(`model:      ${e.model ?? "(none)"}${e.prompt ? `  (${e.prompt.kind})` : ""}`);
  if (e.failure) {
    out.push(`fallback:   ${e.failure.code} — ${e.failure.detail}`);
    out.push(`pick:       least-loaded among ${e.workers.length} eligible worker(s)`);
    return out.join("\n") + "\n";
  }
  out.push(`blocks:     ${e.keys.length} full blocks of ${config.blockSize} tokens (${e.tokens} tokens keyed)`);
  if (e.keys.length) out.push(`keys:       ${e.keys[0]} … ${e.keys[e.keys.length - 1]}`);
  out.push(`state from: ${source}`);
  out.push("");
  const minLoad = Math.min(...e.workers.map((w) => w.inFlight));
  const rows = e.workers.map((w) => {
    const run = e.runs.get(w.id) ?? 0;
    const over = e.guard ? isOverloaded(w.inFlight, minLoad, e.guard) : false;
    const picked = e.decision?.kind === "route" && e.decision.worker.id === w.id;
    return [picked ? "→" : " ", w.id, w.address, `${run}/${e.keys.length}`, String(w.inFlight), over ? "overloaded" : "ok"];
  });
  const header = [" ", "worker", "address", "match", "in-flight", "load guard"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [header, ...rows]) out.push(r.map((c, i) => c.padEnd(widths[i])).join("  "));
  out.push("");
  const d = e.decision;
  if (!d || d.kind === "reject") out.push("pick:       none — no eligible worker (503)");
  else {
    out.push(`pick:       ${d.worker.id} (${d.worker.address}), ${d.outcome}, ${d.matchedBlocks}/${d.totalBlocks} blocks`);
    out.push(
      `why:        ${d.outcome === "hit" ? "longest leading run among workers the load guard allows, then fewest in-flight" : "no worker holds the first block: least-loaded, ties by rendezvous hash of the first block"}${d.guardTripped ? "; a longer match was on an overloaded worker (load-guard)" : ""}`,
    );
  }
  if (showText && e.text) out.push("", "rendered prompt:", e.text);
  return out.join("\n") + "\n";
}

function toJson(e: Explanation, source: string): unknown {
  return {
    model: e.model,
    promptKind: e.prompt?.kind ?? null,
    failure: e.failure,
    blockCount: e.keys.length,
    keys: e.keys,
    stateSource: source,
    workers: e.workers.map((w) => ({ ...w, matchedBlocks: e.runs.get(w.id) ?? 0 })),
    decision: e.decision?.kind === "route" ? { ...e.decision, worker: e.decision.worker.id } : e.decision,
  };
}
