/**
 * Compares the shared map in Redis with the workers' ground truth: the keys each simulated
 * replica's engine holds right now. Reads the documented layout (docs/redis-layout.md) directly,
 * so it sees confirmed entries only — speculative ones (the router's own guesses) are not a
 * disagreement with the workers:
 *   (keys under indexKeyPrefix = "{ns}:v2") :slot HASH worker → slot;  :h:<b0 b1> STRING bucket = width byte V, then records of the
 *   other 6 key bytes and a V-byte value whose byte 2g = confirmed bits of slots 8g…8g+7, most
 *   significant bit first.
 */
import Redis from "ioredis";
import type { BlockKey } from "../../../src/prefix/block-keys";
import { indexKeyPrefix } from "../../../src/state/redis-cache-index";

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

  /** Every block record of the namespace: 16-hex-digit key → value bytes (read bucket by bucket). */
  private async records(): Promise<Map<BlockKey, Buffer>> {
    const tag = indexKeyPrefix(this.namespace);
    const out = new Map<BlockKey, Buffer>();
    let cursor = "0";
    do {
      const [next, names] = await this.client.scanBuffer(cursor, "MATCH", `${tag}:h:*`, "COUNT", 1000);
      cursor = String(next);
      if (names.length === 0) continue;
      const buckets = await this.client.mgetBuffer(...names);
      buckets.forEach((bucket, i) => {
        if (!bucket) return;
        const prefix = names[i].subarray(names[i].length - 2);
        const width = bucket[0];
        for (let p = 1; p + 6 + width <= bucket.length; p += 6 + width) {
          out.set(Buffer.concat([prefix, bucket.subarray(p, p + 6)]).toString("hex"), bucket.subarray(p + 6, p + 6 + width));
        }
      });
    } while (cursor !== "0");
    return out;
  }

  /** The keys the map confirms for `worker`, given every record. */
  private async confirmedKeys(worker: string, records: ReadonlyMap<BlockKey, Buffer>): Promise<Set<BlockKey>> {
    const slot = await this.client.hget(`${indexKeyPrefix(this.namespace)}:slot`, worker);
    const out = new Set<BlockKey>();
    if (slot === null) return out;
    const s = Number(slot);
    const byte = 2 * Math.floor(s / 8);
    const mask = 128 >> s % 8;
    for (const [key, value] of records) if (byte < value.length && (value[byte] & mask) !== 0) out.add(key);
    return out;
  }

  async compare(truth: ReadonlyMap<string, readonly BlockKey[]>): Promise<MapComparison> {
    const records = await this.records();
    const workers: WorkerDiff[] = [];
    for (const [worker, held] of truth) {
      const map = await this.confirmedKeys(worker, records);
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
