/**
 * A real deployment in one process, for the live benchmark: N simulated vLLM replicas (HTTP, real
 * tokenizer, the cost model in scaled time, KV events pushed to the router's ingest), a private
 * redis-server as the shared map, and the real router service (ext_proc gRPC + ingest + Redis)
 * configured with the policy under test.
 */
import { parseConfig } from "../../../src/config/load-config";
import type { RouterConfig } from "../../../src/config/schema";
import { startRouterService, type RouterService } from "../../../src/router-service";
import { H100_LLAMA_8B } from "../../../src/sim/replica-model";
import { startSimReplica, type SimReplica } from "../../../src/sim/sim-replica";
import { silentLogger } from "../../../src/telemetry/logger";
import { loadTokenizerRegistry } from "../../../src/tokenize/tokenizer-registry";
import { startRedisServer, type RedisServer } from "../../support/redis-server";
import { freePort } from "../../support/free-port";

export const LIVE_CONTENDERS = ["round-robin", "random", "least-loaded", "consistent-hash", "approximate", "prefix-router"] as const;
export type LiveContender = (typeof LIVE_CONTENDERS)[number];

export interface LiveClusterSpec {
  readonly replicas: number;
  readonly totalBlocks: number;
  /** Wall ms per model ms for the replicas (0.1 = ten times faster than the cost model). */
  readonly timeScale: number;
  readonly model: string;
  readonly tokenizer: string;
  readonly contender: LiveContender;
  /** Use a private redis-server as the map (default true); false = the embedded map. */
  readonly redis?: boolean;
}

export interface LiveCluster {
  readonly router: RouterService;
  readonly replicas: readonly SimReplica[];
  close(): Promise<void>;
}

const TOKEN = (id: string) => `live-bench-token-${id}`;


/**
 * The router config for a contender: which policy, and whether it hears KV events. The cache-aware
 * contenders run the production default (min-ttft) with its load from the replicas' scraped
 * /metrics; its cost model is scaled like the replicas' clock, so its estimates are in wall time.
 */
export function routerConfigFor(spec: LiveClusterSpec, addresses: readonly string[], ingestPort: number, redisUrl: string | null): RouterConfig {
  const events = spec.contender === "prefix-router";
  const policy = spec.contender === "approximate" || spec.contender === "prefix-router" ? "min-ttft" : spec.contender;
  const cost = H100_LLAMA_8B;
  const scaled = (ms: number) => ms * spec.timeScale;
  return parseConfig({
    extProc: { listen: "127.0.0.1:0" },
    blockSize: 16,
    hashSeed: "0",
    store: redisUrl ? { kind: "redis", url: redisUrl, namespace: `live-${spec.contender}` } : { kind: "memory", maxEntries: spec.replicas * spec.totalBlocks * 2 },
    models: [{ name: spec.model, tokenizer: spec.tokenizer }],
    workers: addresses.map((address, i) => ({ id: `r${i}`, address, models: [spec.model], ingestToken: TOKEN(`r${i}`) })),
    ...(events ? { ingest: { listen: `127.0.0.1:${ingestPort}`, livenessTimeoutMs: 600_000 } } : {}),
    routing: {
      policy,
      costModel: {
        prefillBaseMs: scaled(cost.prefillBaseMs),
        prefillPerTokenMs: scaled(cost.prefillPerTokenMs),
        prefillAttentionMs: scaled(cost.prefillAttentionMs),
        decodeBaseMs: scaled(cost.decodeBaseMs),
        decodePerKvTokenMs: scaled(cost.decodePerKvTokenMs),
        maxBatchedTokens: 8_192,
      },
      // "approximate" knows only its own decisions: they never expire (GIE / SGLang style).
      speculativeTtlMs: spec.contender === "approximate" ? 3_600_000 : 10_000,
      decisionTimeoutMs: 5_000,
      lookupTimeoutMs: 1_000,
    },
    log: { level: "silent" },
  });
}

export async function startLiveCluster(spec: LiveClusterSpec): Promise<LiveCluster> {
  const redis: RedisServer | null = spec.redis === false ? null : await startRedisServer();
  const ports = await Promise.all(Array.from({ length: spec.replicas + 1 }, () => freePort()));
  const addresses = ports.slice(0, spec.replicas).map((p) => `127.0.0.1:${p}`);
  const config = routerConfigFor(spec, addresses, ports[spec.replicas], redis?.url ?? null);
  const router = await startRouterService(config, { logger: silentLogger });
  const registry = await loadTokenizerRegistry([{ name: spec.model, tokenizer: spec.tokenizer }], { segmentCacheBytes: 256 << 20 });
  const engine = { ...baseEngine(), totalBlocks: spec.totalBlocks };
  const replicas = await Promise.all(
    addresses.map((address, i) =>
      startSimReplica({
        id: `r${i}`,
        listen: address,
        model: spec.model,
        hashSeed: "0",
        tokenizer: registry.get(spec.model)!,
        engine,
        timeScale: spec.timeScale,
        ...(router.ingest ? { ingest: { target: router.ingest.server.address, token: TOKEN(`r${i}`), flushMs: 100 } } : {}),
      }),
    ),
  );
  return {
    router,
    replicas,
    close: async () => {
      await Promise.all(replicas.map((r) => r.close()));
      await router.close();
      await redis?.stop();
    },
  };
}

function baseEngine() {
  return { blockSize: 16, totalBlocks: 27_500, maxBatchedTokens: 8_192, maxSeqs: 1_024, cost: H100_LLAMA_8B };
}
