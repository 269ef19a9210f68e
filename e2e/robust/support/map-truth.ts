/**
 * Compares the shared map in Redis with the workers' ground truth: the keys each simulated
 * replica's engine holds right now. Reads the documented layout (docs/redis-layout.md) directly,
 * so it sees confirmed entries only — speculative ones (the router's own guesses) are not a
 * disagreement with the workers:
 *   {ns}:slot HASH worker → slot;  {ns}:w:<worker> SET of its keys;  {ns}:b:<key> STRING, byte 2g
 *   = confirmed bits of slots 8g…8g+7, most significant bit first.
 */
import Redis from "ioredis";
import type { BlockKey } from "../../../src/prefix/block-keys";

export interface WorkerDiff {
  readonly worker: string;
  readonly truth: number;
  readonly map: number;
  /** Keys the worker holds that the map lacks. */
  readonly missing: number;
  /** Keys the map confirms that the worker does not hold. */
  readonly extra: number;
}

export interface MapComparison {
  readonly equal: boolean;
  readonly workers: readonly WorkerDiff[];
}

export class RedisMapReader {
  private readonly client: Redis;

  constructor(
    url: string,
    private readonly namespace: string,
  ) {
    this.client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(50 * n, 500) });
    this.client.on("error", () => undefined); // the runs kill Redis on purpose; reads happen once it is back
  }

  /** The keys the map confirms for `worker`. */
  async confirmedKeys(worker: string): Promise<Set<BlockKey>> {
    const tag = `{${this.namespace}}`;
    const slot = await this.client.hget(`${tag}:slot`, worker);
    if (slot === null) return new Set();
    const s = Number(slot);
    const byte = 2 * Math.floor(s / 8);
    const mask = 128 >> s % 8;
    const keys = await this.client.smembers(`${tag}:w:${worker}`);
    const out = new Set<BlockKey>();
    for (let i = 0; i < keys.length; i += 1000) {
      const part = keys.slice(i, i + 1000);
      const values = await this.client.mgetBuffer(...part.map((k) => `${tag}:b:${k}`));
      values.forEach((v, j) => {
        if (v && byte < v.length && (v[byte] & mask) !== 0) out.add(part[j]);
      });
    }
    return out;
  }

  async compare(truth: ReadonlyMap<string, readonly BlockKey[]>): Promise<MapComparison> {
    const workers: WorkerDiff[] = [];
    for (const [worker, held] of truth) {
      const map = await this.confirmedKeys(worker);
      const heldSet = new Set(held);
      let missing = 0;
      for (const k of heldSet) if (!map.has(k)) missing++;
      let extra = 0;
      for (const k of map) if (!heldSet.has(k)) extra++;
      workers.push({ worker, truth: heldSet.size, map: map.size, missing, extra });
    }
    return { equal: workers.every((w) => w.missing === 0 && w.extra === 0), workers };
  }

  close(): void {
    this.client.disconnect();
  }
}
