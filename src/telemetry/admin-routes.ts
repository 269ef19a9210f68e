/** The admin server's debug routes: what the router believes about workers and their caches. */
import type { RouterConfig } from "../config/schema";
import type { IngestService } from "../ingest/ingest-service";
import type { WorkerStateStore } from "../ingest/worker-state-store";
import type { RequestRouter } from "../router/request-router";
import type { CacheIndex } from "../state/cache-index";
import type { Registry } from "prom-client";
import { heapAfterGc } from "../common/force-gc";
import { json, type AdminHandler } from "./admin-server";

export interface AdminRouteDeps {
  readonly config: Pick<RouterConfig, "workers">;
  readonly index: CacheIndex;
  readonly workerStates: WorkerStateStore;
  readonly router: RequestRouter;
  readonly ingest: IngestService | null;
  readonly metrics: Registry;
  /** The tokenizer threads' heaps (GET /debug/heap). */
  readonly threadHeaps?: () => Promise<number[]>;
}

/** GET /debug/heap exists only when node runs with --expose-gc: a full GC on demand is a debugging tool. */
const gcExposed = () => typeof (globalThis as { gc?: unknown }).gc === "function";

export function adminRoutes(deps: AdminRouteDeps): Record<string, AdminHandler> {
  const heap: Record<string, AdminHandler> = gcExposed()
    ? {
        "GET /debug/heap": async () => {
          const threads = (await deps.threadHeaps?.()) ?? [];
          const main = heapAfterGc();
          const { rss, external, arrayBuffers } = process.memoryUsage();
          return json({ heapUsedAfterGc: main, tokenizerThreadsHeapUsedAfterGc: threads, totalHeapUsedAfterGc: main + threads.reduce((a, b) => a + b, 0), rss, external, arrayBuffers });
        },
      }
    : {};
  return {
    ...heap,
    "GET /healthz": async () => ({ status: 200, contentType: "text/plain", body: "ok\n" }),
    "GET /metrics": async () => ({ status: 200, contentType: deps.metrics.contentType, body: await deps.metrics.metrics() }),
    "GET /debug/workers": async () => {
      const [stats, states] = await Promise.all([deps.index.stats(), deps.workerStates.all()]);
      const stale = deps.ingest?.staleWorkers() ?? new Set<string>();
      const loads = deps.router.loads();
      return json({
        entries: stats.entries,
        workers: deps.config.workers.map((w) => {
          const s = states.get(w.id);
          return {
            id: w.id,
            address: w.address,
            models: w.models,
            blocks: stats.workers[w.id]?.blocks ?? 0,
            speculative: stats.workers[w.id]?.speculative ?? 0,
            inFlight: deps.router.inFlight.inFlight(w.id),
            load: loads.get(w.id) ?? null,
            metrics: deps.router.board.sampleOf(w.id) ?? null,
            candidate: !stale.has(w.id),
            reporting: s ? { epoch: s.epoch, appliedSeq: s.appliedSeq, lastSeenMs: s.lastSeenMs, stale: s.stale, needsResync: s.needsResync, gaps: s.gaps, resyncs: s.resyncs } : null,
          };
        }),
      });
    },
    "GET /debug/ingest": async () => json(deps.ingest ? { ...deps.ingest.counters } : { enabled: false }),
    "POST /debug/lookup": async (_req, body) => {
      const parsed = JSON.parse(body.toString("utf8") || "{}") as { keys?: unknown; workers?: unknown };
      if (!Array.isArray(parsed.keys) || !parsed.keys.every((k) => typeof k === "string")) return json({ error: "keys: expected an array of block keys" }, 400);
      const workers = Array.isArray(parsed.workers) ? parsed.workers.map(String) : deps.config.workers.map((w) => w.id);
      return json(Object.fromEntries(await deps.index.lookup(parsed.keys as string[], workers)));
    },
  };
}
