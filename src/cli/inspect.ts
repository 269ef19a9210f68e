/**
 * `prefix-router inspect --config FILE`: what the router believes about each worker — cached
 * blocks, liveness, last event time, epoch and sequence, gaps and resyncs, in-flight load —
 * read from a running router's admin port.
 */
import type { Command } from "commander";
import { loadConfigFile } from "../config/load-config";
import { AdminClient, type AdminWorker } from "./admin-client";
import { withConfigErrors } from "./config-errors";

interface InspectOptions {
  config: string;
  admin?: string;
  json?: boolean;
}

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("per-worker cache blocks, liveness, last event, epoch/sequence, gaps and load, from a running router")
    .requiredOption("-c, --config <file>", "the router's config file")
    .option("-a, --admin <url>", "a running router's admin URL (default: http://<admin.listen> from the config)")
    .option("--json", "machine-readable output")
    .action((opts: InspectOptions) => withConfigErrors(() => inspect(opts)));
}

async function inspect(opts: InspectOptions): Promise<void> {
  const config = loadConfigFile(opts.config);
  if (!opts.admin && !config.admin) throw new Error("inspect reads a running router's admin port: set admin.listen in the config or pass --admin");
  const admin = opts.admin ? new AdminClient(opts.admin) : AdminClient.fromListen(config.admin!.listen);
  const state = await admin.workers();
  if (opts.json) {
    process.stdout.write(JSON.stringify(state, null, 1) + "\n");
    return;
  }
  process.stdout.write(renderTable(state.workers, Date.now()) + `\ndistinct block keys: ${state.entries}\n`);
}

export function renderTable(workers: readonly AdminWorker[], now: number): string {
  const header = ["worker", "address", "blocks", "speculative", "in-flight", "candidate", "last event", "epoch", "seq", "gaps", "resyncs", "state"];
  const rows = workers.map((w) => {
    const r = w.reporting;
    return [
      w.id,
      w.address,
      String(w.blocks),
      String(w.speculative),
      String(w.inFlight),
      w.candidate ? "yes" : "no",
      r ? `${((now - r.lastSeenMs) / 1000).toFixed(1)}s ago` : "never",
      r ? r.epoch.slice(0, 12) : "-",
      r ? String(r.appliedSeq) : "-",
      r ? String(r.gaps) : "-",
      r ? String(r.resyncs) : "-",
      !r ? "no events yet" : r.stale ? "stale (purged)" : r.needsResync ? "awaiting resync" : "live",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return [header, ...rows].map((row) => row.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n");
}
