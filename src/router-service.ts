/**
 * The composition root: config → tokenizers, cache index, request router → ext_proc server, plus
 * the ingest server and the admin server when configured. Used by `prefix-router serve` and by
 * the end-to-end tests, so both run the same wiring.
 */
import { availableParallelism } from "node:os";
import type { RunningServer } from "./common/grpc-server";
import type { RouterConfig } from "./config/schema";
import { startExtProcServer, type ExtProcServer } from "./extproc/server";
import { startEventPaths, type EventPaths } from "./ingest/event-paths";
import type { IngestService } from "./ingest/ingest-service";
import { MemoryWorkerStateStore, type WorkerStateStore } from "./ingest/worker-state-store";
import { RequestRouter } from "./router/request-router";
import type { CacheIndex } from "./state/cache-index";
import { createCacheIndex } from "./state/create-cache-index";
import { MemoryCacheIndex } from "./state/memory-cache-index";
import { RedisCacheIndex } from "./state/redis-cache-index";
import { RedisWorkerStateStore } from "./ingest/redis-worker-state-store";
import { startAdminServer, type AdminServer } from "./telemetry/admin-server";
import { adminRoutes } from "./telemetry/admin-routes";
import { createLogger, type Logger } from "./telemetry/logger";
import { RouterMetrics } from "./telemetry/metrics";
import { logStreamOutcome } from "./telemetry/stream-log";
import { createDecisionTracing } from "./telemetry/tracing";
import type { RouteRequest } from "./router/route-result";
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { TokenizerPool } from "./tokenize/tokenizer-pool";
import { ModelCatalog } from "./router/model-catalog";
import { MetricsScraper } from "./scrape/metrics-scraper";

export interface RouterService {
  readonly config: RouterConfig;
  readonly extProc: ExtProcServer;
  /** The gRPC ingest server, when `ingest:` is configured. */
  readonly ingest: { readonly server: RunningServer; readonly service: IngestService } | null;
  /** Every KV-event path (gRPC ingest, ZMQ subscribers), when any is configured. */
  readonly events: EventPaths | null;
  readonly admin: AdminServer | null;
  readonly router: RequestRouter;
  readonly index: CacheIndex;
  readonly workerStates: WorkerStateStore;
  /** Worker threads that render, tokenize and hash (tokenize/tokenizer-pool.ts). */
  readonly tokenizers: TokenizerPool;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
  /** Scrapes the workers' /metrics into the router's load view (routing.load.scrapeMetrics). */
  readonly scraper: MetricsScraper | null;
  close(): Promise<void>;
}

export interface RouterServiceOptions {
  readonly logger?: Logger;
  /** An index to use instead of the configured one (tests share one between routers). */
  readonly index?: CacheIndex;
  readonly workerStates?: WorkerStateStore;
  /** Span processors to trace decisions into (tests), whatever `tracing.enabled` says. */
  readonly traceProcessors?: readonly SpanProcessor[];
}

const SWEEP_INTERVAL_MS = 5_000;
const REDIS_UPKEEP_INTERVAL_MS = 1_000;
const IDLE_PURGE_INTERVAL_MS = 60_000;
/** A worker with no report of its own this long leaves a shared map (a vanished pod, a dead router's workers). */
const idlePurgeMs = (config: RouterConfig) => Math.max(3_600_000, 10 * (config.ingest?.livenessTimeoutMs ?? 0));

/**
 * Expired speculative entries are dropped lazily on lookup; the upkeep frees the rest (memory: a
 * sweep of the due expiry buckets, in slices that yield; Redis: bounded sweep scripts until none is
 * due, plus what a stopped router left half cleared), and on Redis purges workers that stopped
 * reporting. Each job skips its tick while the last one still runs.
 */
function startStoreUpkeep(index: CacheIndex, states: WorkerStateStore, config: RouterConfig, logger: Logger): NodeJS.Timeout[] {
  let busy = false;
  const guarded = (work: () => Promise<unknown>, what: string) => () => {
    if (busy) return;
    busy = true;
    work()
      .catch((err: unknown) => logger.debug({ err }, what))
      .finally(() => (busy = false));
  };
  if (index instanceof MemoryCacheIndex) return [setInterval(guarded(() => index.sweepExpired(), "speculation sweep failed"), SWEEP_INTERVAL_MS).unref()];
  if (!(index instanceof RedisCacheIndex)) return [];
  const purge = async () => {
    const idleMs = idlePurgeMs(config);
    // Heartbeats (empty batches) reach the worker-state store, not the map: a worker that only sent
    // heartbeats for an hour is idle, not gone, and keeps its entries.
    const now = Date.now();
    for (const [worker, record] of await states.all()) if (now - record.lastSeenMs < idleMs) await index.markReported(worker);
    const purged = await index.purgeIdleWorkers(idleMs);
    if (purged.length) logger.info({ workers: purged }, "purged workers with no report of their own from the shared map");
  };
  return [
    setInterval(guarded(() => index.maintain(), "store upkeep failed"), REDIS_UPKEEP_INTERVAL_MS).unref(),
    setInterval(guarded(purge, "idle-worker purge failed"), IDLE_PURGE_INTERVAL_MS).unref(),
  ];
}

/** Gives a remote store a moment to connect; never blocks startup on it (routing falls back meanwhile). */
const STORE_CONNECT_WAIT_MS = 2_000;
async function storeReady(index: CacheIndex, states: WorkerStateStore, logger: Logger): Promise<void> {
  const waits: Promise<void>[] = [];
  if (index instanceof RedisCacheIndex) waits.push(index.ready().catch(() => undefined));
  if (states instanceof RedisWorkerStateStore) waits.push(states.ready());
  if (waits.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    Promise.all(waits).then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STORE_CONNECT_WAIT_MS))),
  ]);
  clearTimeout(timer);
  if (timedOut) logger.warn("the store is not reachable yet: routing by the fallback policy until it is");
}

/**
 * A worker removed from the config must not keep entries in a shared map (Redis) or state store.
 * Best effort: an unreachable store is left alone (the router still starts).
 */
async function purgeRemovedWorkers(config: RouterConfig, index: CacheIndex, states: WorkerStateStore, logger: Logger): Promise<void> {
  const configured = new Set(config.workers.map((w) => w.id));
  try {
    const [stats, records] = await Promise.all([index.stats(), states.all()]);
    const removed = new Set([...Object.keys(stats.workers), ...records.keys()].filter((w) => !configured.has(w)));
    for (const worker of removed) {
      await index.clearWorker(worker);
      await states.delete(worker);
    }
    if (removed.size) logger.info({ workers: [...removed] }, "purged workers that are no longer in the config");
  } catch (err) {
    logger.warn({ err }, "could not check the store for removed workers");
  }
}

/** Worker sequence and liveness state lives beside the map: shared when the map is. */
function createWorkerStateStore(store: RouterConfig["store"]): WorkerStateStore {
  switch (store.kind) {
    case "memory":
      return new MemoryWorkerStateStore();
    case "redis":
      return new RedisWorkerStateStore(store);
    default: {
      const unknown: never = store;
      throw new Error(`unknown store kind ${JSON.stringify(unknown)}`);
    }
  }
}

/** Scrapes every worker's vLLM /metrics into the router's load board. */
function startScraper(config: RouterConfig, router: RequestRouter, metrics: RouterMetrics, logger: Logger): MetricsScraper {
  const { scrapeIntervalMs, scrapeTimeoutMs } = config.routing.load;
  const scraper = new MetricsScraper({
    targets: config.workers.map((w) => ({ id: w.id, url: w.metricsUrl ?? `http://${w.address}/metrics` })),
    intervalMs: scrapeIntervalMs,
    timeoutMs: scrapeTimeoutMs,
    now: () => performance.now(),
    onSample: (worker, sample, latencyMs) => {
      router.board.setSample(worker, sample);
      metrics.recordScrape(worker, latencyMs);
    },
    onFailure: (worker) => metrics.recordScrape(worker, null),
    onStateChange: (worker, failing, error) =>
      failing
        ? logger.warn({ worker, error }, "worker /metrics scrape failing: its load is the router's own ledger until it answers")
        : logger.info({ worker }, "worker /metrics scrape answering again"),
  });
  scraper.start();
  return scraper;
}

/**
 * The tokenizer threads: one per core (at most 4) unless configured, and half as many (at least one)
 * for large prompts; the cache budget split 7/8 segments, 1/8 chain states.
 */
function startTokenizerPool(config: RouterConfig): Promise<TokenizerPool> {
  const { maxBytes, threads, bulkNice, largeLane } = config.tokenizerCache;
  const small = threads ?? Math.min(availableParallelism(), 4);
  return TokenizerPool.start({
    models: config.models,
    catalog: new ModelCatalog(config.models, config.workers, config.hashSeed).keyRoots(),
    limits: config.limits,
    threads: small,
    segmentCacheBytes: maxBytes - Math.floor(maxBytes / 8),
    chainCacheBytes: Math.floor(maxBytes / 8),
    bulkNice,
    largeLane: { threads: largeLane.threads ?? Math.max(1, Math.floor(small / 2)), bodyBytes: largeLane.bodyBytes, nice: largeLane.nice },
  });
}

export async function startRouterService(config: RouterConfig, options: RouterServiceOptions = {}): Promise<RouterService> {
  const logger = options.logger ?? createLogger(config.log.level);
  const tokenizers = await startTokenizerPool(config);
  const metrics = new RouterMetrics();
  const rawIndex = options.index ?? createCacheIndex(config.store);
  const index = metrics.instrument(rawIndex);
  const workerStates = options.workerStates ?? createWorkerStateStore(config.store);
  const timers: NodeJS.Timeout[] = [];

  await storeReady(rawIndex, workerStates, logger);
  await purgeRemovedWorkers(config, index, workerStates, logger);
  const events = await startEventPaths(config, index, workerStates, logger);
  const ingest = events?.grpc ? { server: events.grpc, service: events.service } : null;

  const router = new RequestRouter({
    config,
    index,
    tokenizers,
    onBackgroundError: (err) => logger.warn({ err }, "speculative record failed"),
    ...(events ? { staleWorkers: () => events.service.staleWorkers() } : {}),
  });
  const tracing = config.tracing.enabled || options.traceProcessors
    ? createDecisionTracing({ ...config.tracing, processors: options.traceProcessors ?? [] })
    : null;
  const route = tracing ? tracing.wrap((request, stages) => router.route(request, stages)) : (request: RouteRequest) => router.route(request);
  const extProc = await startExtProcServer({
    listen: config.extProc.listen,
    maxMessageBytes: config.extProc.maxMessageBytes,
    bodyMode: config.extProc.bodyMode,
    debugHeaders: config.extProc.debugHeaders,
    fallbackEndpoints: config.extProc.fallbackEndpoints,
    maxBodyBytes: config.limits.maxBodyBytes,
    reflection: config.extProc.reflection,
    bounds: config.extProc,
    route,
    onStreamEnd: (outcome) => {
      metrics.recordStream(outcome);
      logStreamOutcome(logger, outcome);
    },
  });
  metrics.observe({ config, index: rawIndex, inFlight: router.inFlight, tokenizers, events, loads: () => router.loads(), streams: extProc.gate });
  const scraper = config.routing.load.scrapeMetrics ? startScraper(config, router, metrics, logger) : null;
  timers.push(...startStoreUpkeep(rawIndex, workerStates, config, logger));

  const admin = config.admin
    ? await startAdminServer(config.admin.listen, adminRoutes({ config, index: rawIndex, workerStates, router, ingest: events?.service ?? null, metrics: metrics.registry, threadHeaps: () => tokenizers.heapUsed() }))
    : null;

  logger.info(
    {
      extProc: extProc.address,
      ingest: ingest?.server.address ?? null,
      admin: admin?.address ?? null,
      store: config.store.kind,
      models: config.models.map((m) => m.name),
      workers: config.workers.length,
    },
    "prefix-router listening",
  );

  return {
    config,
    extProc,
    ingest,
    events,
    admin,
    router,
    index,
    workerStates,
    tokenizers,
    metrics,
    logger,
    scraper,
    close: async () => {
      scraper?.stop();
      for (const t of timers) clearInterval(t);
      await extProc.close();
      await events?.close();
      await admin?.close();
      await tracing?.shutdown();
      if (!options.index) await index.close();
      if (!options.workerStates && workerStates instanceof RedisWorkerStateStore) await workerStates.close();
      await tokenizers.close();
    },
  };
}
