/**
 * Starts every way KV events reach the router: the gRPC ingest server (vllm-patch pushes) when
 * `ingest:` is configured, and one ZMQ subscriber per worker with `kvEvents:` (vLLM's native
 * stream). Both feed the same CacheIndex and the same liveness picture.
 */
import { bindAndWrap, type RunningServer } from "../common/grpc-server";
import type { RouterConfig } from "../config/schema";
import type { CacheIndex } from "../state/cache-index";
import type { Logger } from "../telemetry/logger";
import { IngestAuth } from "./ingest-auth";
import { BatchValidator } from "./ingest-batch";
import { createIngestServer, ingestCredentials } from "./ingest-server";
import { IngestService } from "./ingest-service";
import type { WorkerStateStore } from "./worker-state-store";
import { ZmqKvSubscriber } from "./zmq-kv-subscriber";

/** Liveness timeout for ZMQ-only deployments (no `ingest:` section). */
const DEFAULT_LIVENESS_TIMEOUT_MS = 15_000;

export interface EventPaths {
  readonly service: IngestService;
  readonly grpc: RunningServer | null;
  readonly subscribers: ReadonlyMap<string, ZmqKvSubscriber>;
  close(): Promise<void>;
}

export async function startEventPaths(config: RouterConfig, index: CacheIndex, states: WorkerStateStore, logger: Logger): Promise<EventPaths | null> {
  const zmqWorkers = config.workers.filter((w) => w.kvEvents);
  if (!config.ingest && zmqWorkers.length === 0) return null;

  const livenessTimeoutMs = config.ingest?.livenessTimeoutMs ?? DEFAULT_LIVENESS_TIMEOUT_MS;
  const service = new IngestService({ index, states, livenessTimeoutMs });
  const grpc = config.ingest
    ? await bindAndWrap(
        createIngestServer({
          config: config.ingest,
          validator: new BatchValidator(config, config.ingest),
          auth: new IngestAuth(config.workers, config.ingest.requireAuth),
          service,
          reflection: config.extProc.reflection,
        }),
        config.ingest.listen,
        ingestCredentials(config.ingest),
      )
    : null;

  const canonical = (name: string) => config.models.find((m) => m.name === name || m.aliases.includes(name))?.name ?? name;
  const subscribers = new Map<string, ZmqKvSubscriber>();
  for (const w of zmqWorkers) {
    const subscriber = new ZmqKvSubscriber({
      workerId: w.id,
      endpoint: w.kvEvents!,
      ...(w.kvEventsReplay ? { replayEndpoint: w.kvEventsReplay } : {}),
      topic: w.kvEventsTopic,
      model: canonical(w.models[0]),
      hashSeed: config.hashSeed,
      blockSize: config.blockSize,
      apply: (worker, ops) => index.apply(worker, ops),
      onBatch: (b) => void service.touchZmq(b.worker, b.seq).catch(() => undefined),
      onGap: (gap) => logger.warn({ ...gap }, "KV event stream gap"),
      logger,
    });
    subscriber.start();
    subscribers.set(w.id, subscriber);
  }

  const timer = setInterval(
    () => {
      service.checkLiveness().then(
        (purged) => purged.length && logger.warn({ workers: purged }, "workers stopped reporting KV events: purged, not candidates until they report again"),
        (err: unknown) => logger.error({ err }, "liveness check failed"),
      );
    },
    Math.max(250, Math.min(1_000, Math.floor(livenessTimeoutMs / 3))),
  ).unref();

  return {
    service,
    grpc,
    subscribers,
    close: async () => {
      clearInterval(timer);
      await grpc?.close();
      await Promise.all([...subscribers.values()].map((s) => s.stop()));
    },
  };
}
