/**
 * `prefix-router explain --config FILE --body request.json [--path …]`: renders, tokenizes and
 * hashes a request exactly as the router would (RequestRouter.explain runs route()'s own plan),
 * queries the configured store (a running router's admin port for the embedded map and the load
 * view; Redis directly), and prints the blocks, each worker's match, load and estimate, and the
 * pick with the term that decided it — without sending traffic.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadConfigFile } from "../config/load-config";
import type { RouterConfig } from "../config/schema";
import { RequestRouter, type Explanation } from "../router/request-router";
import type { DecidingTerm, TtftEstimate } from "../routing/policy";
import { isOverloaded } from "../routing/sticky-least-loaded";
import { outstanding } from "../routing/worker-view";
import { createCacheIndex } from "../state/create-cache-index";
import { MemoryCacheIndex } from "../state/memory-cache-index";
import { PromptKeyer } from "../tokenize/prompt-keyer";
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
    const tokenizers = new PromptKeyer(await loadTokenizerRegistry(config.models, { segmentCacheBytes: 0 }), 0);
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
    const loads = new Map(workers.flatMap((w) => (w.load ? [[w.id, w.load] as const] : [])));
    return { index: admin.lookupIndex(), loads, source: "the running router's admin port", close: async () => undefined };
  }
  const empty = new MemoryCacheIndex({ maxEntries: 1 });
  return { index: empty, loads: undefined, source: "an empty map (no admin.listen in the config and no --admin: the embedded map lives in the running router)", close: () => empty.close() };
}

const WHY: Record<DecidingTerm, string> = {
  cache: "its cached prefix saves more prefill than any queue costs elsewhere",
  load: "less work queued ahead of it than at the workers with a longer cached prefix",
  "shared-prefix": "the prefix it lacks is one every worker caches anyway (charged in part)",
  tie: "equal estimates: rendezvous hash of the last block",
  "only-candidate": "the only eligible worker",
};

const ms = (x: number) => x.toFixed(1);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
}

function render(e: Explanation, source: string, config: RouterConfig, showText: boolean): string {
  const out: string[] = [];
  out.push(`model:      ${e.model ?? "(none)"}${e.prompt ? `  (${e.prompt.kind}${e.prompt.stream ? ", streaming" : ""})` : ""}`);
  out.push(`policy:     ${e.policy}`);
  if (e.failure) {
    out.push(`fallback:   ${e.failure.code} — ${e.failure.detail}`);
    out.push(`pick:       least outstanding work among ${e.workers.length} eligible worker(s)`);
    return out.join("\n") + "\n";
  }
  if (!e.decision || e.decision.kind === "reject") return [...out, "pick:       none — no eligible worker (503)"].join("\n") + "\n";
  out.push(`blocks:     ${e.keys.length} full blocks of ${config.blockSize} tokens (${e.tokens} tokens keyed)`);
  if (e.headOnly) out.push("keyed:      the prompt's head only — no worker holds all of it, so no cached prefix reaches further");
  if (e.keys.length) out.push(`keys:       ${e.keys[0]} … ${e.keys[e.keys.length - 1]}`);
  out.push(`state from: ${source}`);
  out.push("");
  const d = e.decision;
  if (d.estimates) {
    // min-ttft: every worker's estimate and its parts, best charge first.
    const rows = d.estimates.map((x: TtftEstimate) => [
      x.worker.id === d.worker.id ? "→" : " ", x.worker.id, `${x.matchedBlocks}/${e.keys.length}`,
      String(Math.round(x.worker.load?.queuedTokens ?? 0)), String(x.worker.load?.running ?? 0),
      ms(x.queueMs), ms(x.stepMs), ms(x.prefillMs), ms(x.ttftMs), ms(x.sharedDiscountMs), ms(x.othersMs), ms(x.scoreMs),
    ]);
    out.push(...table([" ", "worker", "match", "queued tok", "running", "queue ms", "step ms", "prefill ms", "TTFT ms", "shared −ms", "others +ms", "charge"], rows));
    out.push("");
    out.push(`pick:       ${d.worker.id} (${d.worker.address}), ${d.outcome}, ${d.matchedBlocks}/${d.totalBlocks} blocks, estimated TTFT ${ms(d.estimates[0].ttftMs)} ms`);
    out.push(`why:        ${d.decidedBy ? `${d.decidedBy} — ${WHY[d.decidedBy]}` : "-"}`);
  } else {
    const minLoad = Math.min(...e.workers.map(outstanding));
    const rows = e.workers.map((w) => {
      const over = e.guard ? isOverloaded(outstanding(w), minLoad, e.guard) : false;
      return [d.worker.id === w.id ? "→" : " ", w.id, w.address, `${e.runs.get(w.id) ?? 0}/${e.keys.length}`, String(outstanding(w)), over ? "overloaded" : "ok"];
    });
    out.push(...table([" ", "worker", "address", "match", "load", "load guard"], rows));
    out.push("");
    out.push(`pick:       ${d.worker.id} (${d.worker.address}), ${d.outcome}, ${d.matchedBlocks}/${d.totalBlocks} blocks`);
    const why = d.gainDeclined
      ? "the longest match led the least-loaded worker's by fewer than routing.minGainBlocks (a shared head counts as held by all): least-loaded (min-gain)"
      : d.guardTripped
        ? "a longer match was only on overloaded workers (load-guard)"
        : d.outcome === "hit"
          ? "longest leading run among workers the load guard allows, then least load"
          : "no worker holds the first block: least load, ties by rendezvous hash of the last block";
    out.push(`why:        ${why}`);
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
    headOnly: e.headOnly ?? false,
    keys: e.keys,
    stateSource: source,
    workers: e.workers.map((w) => ({ ...w, matchedBlocks: e.runs.get(w.id) ?? 0 })),
    decision:
      e.decision?.kind === "route"
        ? { ...e.decision, worker: e.decision.worker.id, estimates: e.decision.estimates?.map((x) => ({ ...x, worker: x.worker.id })) }
        : e.decision,
  };
}
