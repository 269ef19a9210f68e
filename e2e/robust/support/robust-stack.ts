/**
 * The deployment the chaos and several-routers runs fault: a private redis-server as the shared
 * map, N router processes (`prefix-router serve`, each with ext_proc, ingest and admin on fixed
 * ports), and simulated vLLM replicas in a process of their own (sim-host.ts) that push their KV
 * events to a router's ingest through a fault-injecting proxy (replica i → router i mod N). The
 * routers scrape the replicas' /metrics for load.
 */
import { freePort } from "../../support/free-port";
import { startRedisServer, type RedisServer } from "../../support/redis-server";
import { QWEN3_TOKENIZER } from "../../support/router-fixture";
import { RedisMapReader } from "./map-truth";
import { startRouterChild, type RouterChild } from "./router-child";
import { SimHost } from "./sim-host-client";

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
  readonly sims: SimHost;
  readonly addresses: readonly string[];
  readonly ids: readonly string[];
  readonly map: RedisMapReader;
  close(): Promise<void>;
}

const token = (id: string) => `robust-test-ingest-token-${id}`;

export function routerConfig(o: RobustStackOptions, redisUrl: string, ports: RouterEndpoints, addresses: readonly string[], ids: readonly string[]): Record<string, unknown> {
  return {
    extProc: { listen: ports.extProc },
    ingest: { listen: ports.ingest },
    admin: { listen: ports.admin },
    blockSize: 16,
    hashSeed: "0",
    store: { kind: "redis", url: redisUrl, namespace: NAMESPACE },
    models: [{ name: MODEL, tokenizer: QWEN3_TOKENIZER }],
    workers: addresses.map((address, i) => ({ id: ids[i], address, models: [MODEL], ingestToken: token(ids[i]) })),
    log: { level: "warn" },
    ...o.routerConfig,
  };
}

export async function startRobustStack(o: RobustStackOptions): Promise<RobustStack> {
  const redis = await startRedisServer();
  const port = async () => `127.0.0.1:${await freePort()}`;
  const addresses = await Promise.all(Array.from({ length: o.replicas }, port));
  const ids = addresses.map((_, i) => `sim-${i + 1}`);
  const endpoints: RouterEndpoints[] = [];
  for (let i = 0; i < o.routers; i++) endpoints.push({ extProc: await port(), ingest: await port(), admin: await port() });
  const routers: RouterChild[] = [];
  let sims: SimHost | null = null;
  const closeAll = async () => {
    await sims?.close();
    await Promise.all(routers.map((r) => r.stop().catch(() => undefined)));
    await redis.stop();
  };
  try {
    // One after another: each loads the tokenizer, and two cores are all CI has.
    for (let i = 0; i < o.routers; i++) routers.push(await startRouterChild({ config: routerConfig(o, redis.url, endpoints[i], addresses, ids), name: `router-${i + 1}` }));
    sims = await SimHost.start({
      addresses,
      ids,
      ingestTargets: endpoints.map((e) => e.ingest),
      tokens: ids.map(token),
      model: MODEL,
      tokenizer: QWEN3_TOKENIZER,
      totalBlocks: o.totalBlocks,
      timeScale: o.timeScale,
      seed: o.seed ?? 1,
    });
    const map = new RedisMapReader(redis.url, NAMESPACE);
    const host = sims;
    return {
      redis,
      routers,
      endpoints,
      sims: host,
      addresses,
      ids,
      map,
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
