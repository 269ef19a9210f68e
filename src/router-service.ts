/**
 * The composition root: config → tokenizers, cache index, request router → ext_proc server.
 * Used by `prefix-router serve` and by the end-to-end tests, so both run the same wiring.
 */
import type { RouterConfig } from "./config/schema";
import { startExtProcServer, type RunningServer } from "./extproc/server";
import { RequestRouter } from "./router/request-router";
import type { CacheIndex } from "./state/cache-index";
import { createCacheIndex } from "./state/create-cache-index";
import { MemoryCacheIndex } from "./state/memory-cache-index";
import { createLogger, type Logger } from "./telemetry/logger";
import { logStreamOutcome } from "./telemetry/stream-log";
import { loadTokenizerRegistry, type TokenizerRegistry } from "./tokenize/tokenizer-registry";

export interface RouterService {
  readonly extProc: RunningServer;
  readonly router: RequestRouter;
  readonly index: CacheIndex;
  readonly tokenizers: TokenizerRegistry;
  readonly logger: Logger;
  close(): Promise<void>;
}

export interface RouterServiceOptions {
  readonly logger?: Logger;
  /** An index to use instead of the configured one (tests share one between routers). */
  readonly index?: CacheIndex;
}

const SWEEP_INTERVAL_MS = 5_000;

export async function startRouterService(config: RouterConfig, options: RouterServiceOptions = {}): Promise<RouterService> {
  const logger = options.logger ?? createLogger(config.log.level);
  const tokenizers = await loadTokenizerRegistry(config.models, { segmentCacheBytes: config.tokenizerCache.maxBytes });
  const index = options.index ?? createCacheIndex(config.store);
  const router = new RequestRouter({
    config,
    index,
    tokenizers,
    onBackgroundError: (err) => logger.warn({ err }, "speculative record failed"),
  });
  const extProc = await startExtProcServer({
    listen: config.extProc.listen,
    maxMessageBytes: config.extProc.maxMessageBytes,
    bodyMode: config.extProc.bodyMode,
    debugHeaders: config.extProc.debugHeaders,
    maxBodyBytes: config.limits.maxBodyBytes,
    route: (request) => router.route(request),
    onStreamEnd: (outcome) => logStreamOutcome(logger, outcome),
  });
  // Expired speculative entries are dropped lazily on lookup; the sweep frees the rest.
  const sweep = index instanceof MemoryCacheIndex ? setInterval(() => index.sweepExpired(), SWEEP_INTERVAL_MS).unref() : undefined;
  logger.info({ extProc: extProc.address, store: config.store.kind, models: config.models.map((m) => m.name), workers: config.workers.length }, "prefix-router listening");

  return {
    extProc,
    router,
    index,
    tokenizers,
    logger,
    close: async () => {
      if (sweep) clearInterval(sweep);
      await extProc.close();
      if (!options.index) await index.close();
    },
  };
}
