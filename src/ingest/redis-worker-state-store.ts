/**
 * WorkerStateStore on Redis, so every router replica sharing a map also shares what it knows of
 * each worker (epoch, applied seq, last heard from): a worker may push to any router.
 * One HASH per namespace, `{ns}:workers`, field = worker id, value = JSON record; in the same
 * hash tag as the cache index (docs/redis-layout.md).
 */
import type { Redis } from "ioredis";
import { redisClientClass } from "../state/load-ioredis";
import type { WorkerId } from "../state/cache-index";
import { failFastRedisOptions } from "../state/redis-cache-index";
import type { WorkerRecord, WorkerStateStore } from "./worker-state-store";

export class RedisWorkerStateStore implements WorkerStateStore {
  private readonly client: Redis;
  private readonly key: string;

  constructor(options: { readonly url: string; readonly namespace: string; readonly commandTimeoutMs: number }) {
    this.client = new (redisClientClass())(options.url, { ...failFastRedisOptions(options.commandTimeoutMs), lazyConnect: false });
    this.client.on("error", () => undefined); // failures surface on each call
    this.key = `{${options.namespace}}:workers`;
  }

  /** Resolves when connected (or never, while Redis is unreachable: callers bound the wait). */
  ready(): Promise<void> {
    if (this.client.status === "ready") return Promise.resolve();
    return new Promise((resolve) => this.client.once("ready", () => resolve()));
  }

  async get(worker: WorkerId): Promise<WorkerRecord | undefined> {
    const raw = await this.client.hget(this.key, worker);
    return raw === null ? undefined : (JSON.parse(raw) as WorkerRecord);
  }

  async put(worker: WorkerId, record: WorkerRecord): Promise<void> {
    await this.client.hset(this.key, worker, JSON.stringify(record));
  }

  async all(): Promise<ReadonlyMap<WorkerId, WorkerRecord>> {
    const raw = await this.client.hgetall(this.key);
    return new Map(Object.entries(raw).map(([w, v]) => [w, JSON.parse(v) as WorkerRecord]));
  }

  async delete(worker: WorkerId): Promise<void> {
    await this.client.hdel(this.key, worker);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
