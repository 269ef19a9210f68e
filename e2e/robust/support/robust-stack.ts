/**
 * The deployment the chaos and several-routers runs fault: a private redis-server as the shared
 * map, N router processes (`prefix-router serve`, each with ext_proc, ingest and admin on fixed
 * ports), and simulated vLLM replicas in this process that push their KV events to a router's
 * ingest through a fault-injecting proxy (replica i → router i mod N). The routers scrape the
 * replicas' /metrics for load. restartReplica() replaces a replica by a fresh one (empty cache, new
 * epoch) on the same address, as a vLLM restart does.
 */
import { H100_LLAMA_8B, type ReplicaConfig } from "../../../src/sim/replica-model";
import { startSimReplica, type SimReplica } from "../../../src/sim/sim-replica";
import { loadTokenizerRegistry, type ModelTokenizer } from "../../../src/tokenize/tokenizer-registry";
import type { BlockKey } from "../../../src/prefix/block-keys";
import { freePort } from "../../support/free-port";
import { startRedisServer, type RedisServer } from "../../support/redis-server";
import { QWEN3_TOKENIZER } from "../../support/router-fixture";
import { startIngestFaultProxy, type IngestFaultProxy } from "./ingest-fault-proxy";
import { RedisMapReader } from "./map-truth";
import { startRouterChild, type RouterChild } from "./router-child";

export const MODEL = "qwen3";
export const NAMESPACE = "robust";

export interface RobustStackOptions {
  readonly routers: number;
  readonly replicas: number;
  /** KV blocks per replica: small enough that caches evict under the run's load. */
  readonly totalBlocks: number;
  /** Wall ms per model ms for the replicas. */
  readonly timeScale: number;
  readonly seed?: number;
  /** Extra router config, merged over the defaults at the top level (e.g. routing). */
  readonly routerConfig?: Record<string, unknown>;
}

export interface RouterEndpoints {
  readonly extProc: string;
  readonly ingest: string;
  readonly admin: string;
}

export interface RobustStack {
  readonly redis: RedisServer;
  readonly routers: readonly RouterChild[];
  readonly endpoints: readonly RouterEndpoints[];
  /** One per router: the replicas reporting to router i push through proxies[i]. */
  readonly proxies: readonly IngestFaultProxy[];
  readonly replicas: SimReplica[];
  readonly addresses: readonly string[];
  readonly ids: readonly string[];
  readonly map: RedisMapReader;
  /** Every replica's cached keys right now (the ground truth). */
  truth(): Map<string, readonly BlockKey[]>;
  /** Closes replica i and starts a fresh one (empty cache, new epoch) on its address after `downMs`. */
  restartReplica(i: number, downMs: number): Promise<void>;
  /** Resolves when every replica's reporter has nothing queued or in flight (false on timeout). */
  flushReporters(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

const token = (id: string) => `robust-test-ingest-token-${id}`;

export function routerConfig(o: RobustStackOptions, redisUrl: string, ports: RouterEndpoints, addresses: readonly string[], ids: readonly string[], tokenizer = QWEN3_TOKENIZER): Record<string, unknown> {
  const extra = o.routerConfig ?? {};
  return {
    extProc: { listen: ports.extProc },
    ingest: { listen: ports.ingest },
    admin: { listen: ports.admin },
    blockSize: 16,
    hashSeed: "0",
    store: { kind: "redis", url: redisUrl, namespace: NAMESPACE },
    models: [{ name: MODEL, tokenizer }],
    workers: addresses.map((address, i) => ({ id: ids[i], address, models: [MODEL], ingestToken: token(ids[i]) })),
    log: { level: "warn" },
    ...extra,
  };
}

export async function startRobustStack(o: RobustStackOptions): Promise<RobustStack> {
  const redis = await startRedisServer();
  const port = async () => `127.0.0.1:${await freePort()}`;
  const addresses = await Promise.all(Array.from({ length: o.replicas }, port));
  const ids = addresses.map((_, i) => `sim-${i + 1}`);
  const endpoints: RouterEndpoints[] = [];
  for (let i = 0; i < o.routers; i++) endpoints.push({ extProc: await port(), ingest: await port(), admin: await port() });
  const proxies: IngestFaultProxy[] = [];
  const routers: RouterChild[] = [];
  const replicas: SimReplica[] = [];
  const closeAll = async () => {
    await Promise.all(replicas.map((r) => r.close().catch(() => undefined)));
    await Promise.all(routers.map((r) => r.stop().catch(() => undefined)));
    await Promise.all(proxies.map((p) => p.close()));
    await redis.stop();
  };
  try {
    for (let i = 0; i < o.routers; i++) proxies.push(await startIngestFaultProxy(endpoints[i].ingest, (o.seed ?? 1) + i));
    // Routers start one after another: each loads the tokenizer, and two cores are all we have.
    for (let i = 0; i < o.routers; i++) routers.push(await startRouterChild({ config: routerConfig(o, redis.url, endpoints[i], addresses, ids), name: `router-${i + 1}` }));
    const registry = await loadTokenizerRegistry([{ name: MODEL, tokenizer: QWEN3_TOKENIZER }], { segmentCacheBytes: 128 << 20 });
    const tokenizer = registry.get(MODEL)!;
    const engine: ReplicaConfig = { blockSize: 16, totalBlocks: o.totalBlocks, maxBatchedTokens: 8_192, maxSeqs: 256, cost: H100_LLAMA_8B };
    const startReplica = (i: number) => startReplicaAt(i, tokenizer, engine);
    const startReplicaAt = (i: number, tk: ModelTokenizer, eng: ReplicaConfig) =>
      startSimReplica({
        id: ids[i],
        listen: addresses[i],
        model: MODEL,
        hashSeed: "0",
        tokenizer: tk,
        engine: eng,
        timeScale: o.timeScale,
        ingest: { target: proxies[i % o.routers].address, token: token(ids[i]), flushMs: 100 },
        onError: () => undefined, // the faults make reporters fail on purpose
      });
    for (let i = 0; i < o.replicas; i++) replicas.push(await startReplica(i));
    const map = new RedisMapReader(redis.url, NAMESPACE);
    return {
      redis,
      routers,
      endpoints,
      proxies,
      replicas,
      addresses,
      ids,
      map,
      truth: () => new Map(replicas.map((r) => [r.server.id, r.server.engine.cachedKeys()])),
      restartReplica: async (i, downMs) => {
        await replicas[i].close();
        await new Promise((r) => setTimeout(r, downMs));
        replicas[i] = await startReplica(i);
      },
      flushReporters: async (timeoutMs) => (await Promise.all(replicas.map((r) => r.reporter!.flush(timeoutMs)))).every(Boolean),
      close: async () => {
        map.close();
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
