/**
 * CacheIndex on Redis, shared by every router replica. Work is cut into Lua scripts of bounded
 * size, so no call holds Redis for long (every script is atomic; a call of up to SLICE_KEYS keys is
 * one script, one round trip); the clock is Redis TIME, so all routers agree on when a speculative
 * entry expires. Layout, scripts and measured cost: docs/redis-layout.md. Every key starts with
 * indexKeyPrefix(ns) = "{ns}:v2" (hash tag, then layout version), written P below:
 *
 *   P:h:<2 key bytes> STRING  bucket: value width, then records (6 key bytes, value: 2 bits
 *                                per worker slot, confirmed and speculative; see prelude)
 *   P:nb              STRING  bitmap of the buckets that may be non-empty (for the drain cursor)
 *   P:spec            ZSET    "<8-byte block key><worker>" → expiry ms of speculative entries
 *   P:slot            HASH    worker → slot;  P:free ZSET of released slots
 *   P:drain           HASH    detached slot → "<cursor end> <worker>": bits not yet cleared
 *   P:stats           HASH    entries, nextslot, cursor, c:|s:|t:<worker> (confirmed,
 *                                speculative, last own report in Redis ms)
 *
 * Parameters: namespace (default "pr"; one per index, e.g. one per model), and for a client this
 * index creates: commandTimeoutMs (default 1000), connectTimeoutMs (default 1000), redisOptions.
 */
import type { Cluster, Redis, RedisOptions } from "ioredis";
import { redisClientClass } from "./load-ioredis";
import { KEY_BYTES, type BlockKey } from "../prefix/block-keys";
import type { CacheIndex, IndexOp, IndexStats, WorkerId, WorkerIndexStats } from "./cache-index";
import { APPLY_LUA, DRAIN_LUA, LOOKUP_LUA, PURGE_IDLE_LUA, SWAP_LUA, SWEEP_LUA } from "./redis-scripts";

/*
 * Script sizes. Redis runs one script at a time, so each bound below is chosen to keep a script
 * near ~5 ms of Redis CPU or less at the per-item costs measured on the bucket layout (2-core VM,
 * quiet, `npm run bench:cache-index`): a stored key ~25 µs (its bucket is read, cut and written
 * back), an expired speculative entry ~30 µs, a walked block ~1 µs, a drained record ~1.4 µs.
 * Larger work is cut into several scripts, in order; a lookup may see part of a sliced batch.
 */
/** Keys stored or removed per script (~3 ms). */
export const SLICE_KEYS = 128;
/** Blocks walked per lookup script (~1–2 ms); a longer chain continues for the workers still matching. */
export const LOOKUP_SLICE = 1024;
/**
 * Expired speculative entries dropped per sweep script (~2 ms; at 128 the estimate was ~4 ms and
 * one script of a bench run took 8.4 ms with Redis on a core of its own).
 */
const SWEEP_LIMIT = 64;
/** Records passed per drain script, and buckets read per drain script (~1.5 ms). */
const DRAIN_RECORDS = 1024;
const DRAIN_BUCKETS = 128;
/** The name a resync is built under until it is swapped in (never a configured worker id). */
const shadowOf = (worker: WorkerId) => `${worker}\u0000resync`;

/**
 * Where a namespace's keys live: its hash tag (one Redis Cluster slot) and the layout version. The
 * version is in every key name so that routers of another layout on the same Redis and namespace
 * (a rolling upgrade) keep maps of their own instead of misreading each other's keys; v1, the
 * per-block layout, used "{ns}:" alone.
 */
export const indexKeyPrefix = (namespace: string) => `{${namespace}}:v2`;

export interface RedisCacheIndexOptions {
  /** A client the caller owns (close() leaves it open). Give `client` or `url`, not both. */
  readonly client?: Redis | Cluster;
  /** redis://[user:pass@]host:port[/db]; the index creates and owns a fail-fast client. */
  readonly url?: string;
  /** Key namespace, wrapped in a hash tag: "pr" → keys "{pr}:v2:…" (indexKeyPrefix). Default "pr". */
  readonly namespace?: string;
  /** Owned client only: a command without a reply in this time rejects. Default 1000. */
  readonly commandTimeoutMs?: number;
  /** Owned client only: TCP connect timeout. Default 1000. */
  readonly connectTimeoutMs?: number;
  /** Owned client only: merged over failFastRedisOptions(). */
  readonly redisOptions?: RedisOptions;
}

/**
 * ioredis options so that a dead or hung Redis fails calls fast instead of queueing them: no
 * offline queue (calls while disconnected reject at once), a command timeout (covers a server that
 * accepts but never answers), one retry per request, no resend of a batch that was in flight when
 * the connection dropped, and reconnecting forever with backoff capped at 1 s.
 */
export function failFastRedisOptions(commandTimeoutMs = 1000, connectTimeoutMs = 1000): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: connectTimeoutMs,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 1000),
  };
}

/** ioredis flattens array arguments one level, so long key lists need no spread. */
type Arg = string | number | Buffer;
type ScriptCall = (...args: (Arg | readonly Arg[])[]) => Promise<unknown>;
interface ScriptedClient {
  prefixRouterApply: ScriptCall;
  prefixRouterLookup: ScriptCall;
  prefixRouterSweep: ScriptCall;
  prefixRouterPurgeIdle: ScriptCall;
  prefixRouterDrain: ScriptCall;
  prefixRouterSwap: ScriptCall;
}

const SCRIPTS: Record<keyof ScriptedClient, string> = {
  prefixRouterApply: APPLY_LUA,
  prefixRouterLookup: LOOKUP_LUA,
  prefixRouterSweep: SWEEP_LUA,
  prefixRouterPurgeIdle: PURGE_IDLE_LUA,
  prefixRouterDrain: DRAIN_LUA,
  prefixRouterSwap: SWAP_LUA,
};

export class RedisCacheIndex implements CacheIndex {
  /** Creates the index and waits until its connection is ready (calls before that would fail). */
  static async connect(options: RedisCacheIndexOptions): Promise<RedisCacheIndex> {
    const index = new RedisCacheIndex(options);
    await index.ready();
    return index;
  }

  readonly namespace: string;
  private readonly client: Redis | Cluster;
  private readonly scripts: ScriptedClient;
  private readonly owned: boolean;
  private readonly tag: string;
  private readonly statsKey: string;
  private readonly specKey: string;
  private readonly bucketPrefix: Buffer;

  constructor(options: RedisCacheIndexOptions) {
    const namespace = options.namespace ?? "pr";
    if (namespace === "" || /[{}]/.test(namespace)) {
      throw new RangeError(`namespace must be non-empty without "{" or "}", got ${JSON.stringify(namespace)}`);
    }
    if ((options.client === undefined) === (options.url === undefined)) {
      throw new RangeError("give exactly one of client or url");
    }
    this.namespace = namespace;
    this.tag = indexKeyPrefix(namespace);
    this.statsKey = `${this.tag}:stats`;
    this.specKey = `${this.tag}:spec`;
    this.bucketPrefix = Buffer.from(`${this.tag}:h:`);
    this.owned = options.client === undefined;
    this.client =
      options.client ??
      new (redisClientClass())(options.url!, {
        ...failFastRedisOptions(options.commandTimeoutMs, options.connectTimeoutMs),
        ...options.redisOptions,
      });
    // Scripts build most key names themselves, so a client-side prefix would split the layout.
    if (this.client.options.keyPrefix) throw new RangeError("ioredis keyPrefix is not supported; use namespace");
    // An owned client reports failures through rejected calls; without a listener ioredis would
    // also print every reconnect error to stderr.
    if (this.owned) this.client.on("error", () => {});
    for (const [name, lua] of Object.entries(SCRIPTS)) this.client.defineCommand(name, { lua, numberOfKeys: 2 });
    this.scripts = this.client as unknown as ScriptedClient;
  }

  /** Resolves once the connection is ready; rejects if it ends first. */
  ready(): Promise<void> {
    const client = this.client;
    if (client.status === "ready") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onReady = () => {
        client.off("end", onEnd);
        resolve();
      };
      const onEnd = () => {
        client.off("ready", onReady);
        reject(new Error(`redis connection ended before ready (namespace ${this.namespace})`));
      };
      client.once("ready", onReady);
      client.once("end", onEnd);
    });
  }

  async add(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    if (keys.length > 0) await this.applyArgs(worker, [{ op: "add", keys }]);
  }

  async addSpeculative(worker: WorkerId, keys: readonly BlockKey[], ttlMs: number): Promise<void> {
    if (keys.length === 0 || !(ttlMs > 0)) return;
    const packed = packKeys(keys);
    for (let from = 0; from < keys.length; from += SLICE_KEYS) {
      const slice = packed.subarray(KEY_BYTES * from, KEY_BYTES * (from + SLICE_KEYS));
      await this.scripts.prefixRouterApply(this.statsKey, this.specKey, [this.tag, worker, "S", Math.ceil(ttlMs), slice]);
    }
  }

  async remove(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    if (keys.length > 0) await this.applyArgs(worker, [{ op: "remove", keys }]);
  }

  async clearWorker(worker: WorkerId): Promise<void> {
    await this.applyArgs(worker, [{ op: "clear" }]);
  }

  async apply(worker: WorkerId, ops: readonly IndexOp[]): Promise<void> {
    if (ops.length > 0) await this.applyArgs(worker, ops);
  }

  /**
   * Built under a shadow name in slices, then swapped in by one script: a lookup sees the old
   * entries until the swap and all of the new ones after it. Calls for the same worker made while
   * a resync runs (the ingest never makes any) are lost at the swap.
   */
  async replaceWorker(worker: WorkerId, keys: readonly BlockKey[]): Promise<void> {
    if (keys.length <= SLICE_KEYS) return this.applyArgs(worker, [{ op: "clear" }, { op: "add", keys }]);
    const shadow = shadowOf(worker);
    await this.applyArgs(shadow, [{ op: "clear" }, { op: "add", keys }]);
    await this.scripts.prefixRouterSwap(this.statsKey, this.specKey, [this.tag, worker, shadow]);
    await this.drain();
  }

  /** One script per LOOKUP_SLICE blocks, each asking only the workers whose run reached it. */
  /** `parent` changes nothing here: this index keeps no recency order (Redis bounds memory with maxmemory). */
  async lookup(keys: readonly BlockKey[], workers: readonly WorkerId[], _parent?: BlockKey): Promise<ReadonlyMap<WorkerId, number>> {
    let asked = [...new Set(workers)]; // a duplicate would drop one expired entry twice
    const runs = new Map<WorkerId, number>();
    for (const w of asked) runs.set(w, 0);
    for (let from = 0; from < keys.length && asked.length > 0; from += LOOKUP_SLICE) {
      const slice = keys.slice(from, from + LOOKUP_SLICE);
      const part = await this.lookupSlice(slice, asked);
      for (const [w, run] of part) runs.set(w, from + run);
      asked = asked.filter((w) => part.get(w) === slice.length);
    }
    return runs;
  }

  private async lookupSlice(keys: readonly BlockKey[], asked: readonly WorkerId[]): Promise<ReadonlyMap<WorkerId, number>> {
    const runs = new Map<WorkerId, number>();
    const packed = packKeys(keys);
    // Bucket names built here ("{ns}:h:" + 2 key bytes each) and the 6-byte fields apart, so the
    // script only cuts strings (building names in Lua costs more).
    const width = this.bucketPrefix.length + 2;
    const names = Buffer.allocUnsafe(width * keys.length);
    const fields = Buffer.allocUnsafe((KEY_BYTES - 2) * keys.length);
    for (let i = 0; i < keys.length; i++) {
      this.bucketPrefix.copy(names, width * i);
      packed.copy(names, width * i + width - 2, KEY_BYTES * i, KEY_BYTES * i + 2);
      packed.copy(fields, (KEY_BYTES - 2) * i, KEY_BYTES * i + 2, KEY_BYTES * (i + 1));
    }
    const reply = (await this.scripts.prefixRouterLookup(this.statsKey, this.specKey, this.tag, names, fields, asked)) as number[];
    asked.forEach((w, i) => runs.set(w, Number(reply[i])));
    return runs;
  }

  /**
   * Drops up to `limit` expired speculative entries (earliest expiry first; lookups also drop the
   * ones they meet). Bounded work per call: call again while it returns `limit`.
   */
  async sweepExpired(limit = SWEEP_LIMIT): Promise<number> {
    if (!(limit > 0)) return 0;
    return Number(await this.scripts.prefixRouterSweep(this.statsKey, this.specKey, [this.tag, Math.floor(limit)]));
  }

  /**
   * Liveness: clears every worker whose last own report (add, remove, clear, apply, replace — not
   * speculation) is at least `idleMs` old by Redis TIME; returns the cleared workers. They vanish
   * from lookups at once (one script); their entries are freed in bounded steps before it returns.
   */
  /** Restarts `worker`'s liveness clock without changing its entries (a report with nothing in it). */
  async markReported(worker: WorkerId): Promise<void> {
    await this.scripts.prefixRouterApply(this.statsKey, this.specKey, [this.tag, worker, "R", ""]);
  }

  async purgeIdleWorkers(idleMs: number): Promise<WorkerId[]> {
    const reply = await this.scripts.prefixRouterPurgeIdle(this.statsKey, this.specKey, [this.tag, Math.max(0, idleMs)]);
    await this.drain();
    return (reply as unknown[]).map(String);
  }

  /**
   * Periodic upkeep, each step one bounded script: drops every expired speculative entry (sweeps
   * again while a sweep comes back full, up to `maxSteps`) and frees entries of detached slots
   * left by a router that stopped halfway. Returns the expired entries dropped.
   */
  async maintain(maxSteps = 1000): Promise<number> {
    let dropped = 0;
    for (let step = 0; step < maxSteps; step++) {
      const n = await this.sweepExpired(SWEEP_LIMIT);
      dropped += n;
      if (n < SWEEP_LIMIT) break;
    }
    await this.drain(maxSteps);
    return dropped;
  }

  /**
   * Clears the bits of detached slots: moves the bucket cursor one bounded script at a time until
   * every detached slot has had its full pass (and is free again).
   */
  private async drain(maxSteps = Number.POSITIVE_INFINITY): Promise<void> {
    for (let step = 0; step < maxSteps; step++) {
      const args = [this.tag, DRAIN_RECORDS, DRAIN_BUCKETS];
      const [, left] = (await this.scripts.prefixRouterDrain(this.statsKey, this.specKey, args)) as [number, number];
      if (Number(left) === 0) return;
    }
  }

  /**
   * `entries` is an exact counter kept by the scripts (not a keyspace scan); `speculative` still
   * counts expired entries that no lookup or sweep has dropped yet.
   */
  async stats(): Promise<IndexStats> {
    const raw = await this.client.hgetall(this.statsKey);
    const workers: Record<WorkerId, WorkerIndexStats> = {};
    const at = (w: WorkerId) => (workers[w] ??= { blocks: 0, speculative: 0 });
    for (const [field, value] of Object.entries(raw)) {
      const worker = field.slice(2);
      if (worker.endsWith(shadowOf(""))) continue; // a resync in progress
      if (field.startsWith("c:")) workers[worker] = { ...at(worker), blocks: Number(value) };
      else if (field.startsWith("s:")) workers[worker] = { ...at(worker), speculative: Number(value) };
    }
    return { entries: Number(raw.entries ?? 0), workers };
  }

  /** Closes an owned client (a caller's client stays open). */
  async close(): Promise<void> {
    if (!this.owned) return;
    if (this.client.status === "ready") await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  /** Ops in order, cut into scripts of at most SLICE_KEYS keys; a clear is drained afterwards. */
  private async applyArgs(worker: WorkerId, ops: readonly IndexOp[]): Promise<void> {
    // Packed (and so checked) whole before the first script: a bad key never leaves a batch half applied.
    const packed = ops.map((op) => (op.op === "clear" ? undefined : packKeys(op.keys)));
    let args: Arg[] = [];
    let room = SLICE_KEYS;
    let cleared = false;
    const send = async () => {
      if (args.length === 0) return;
      await this.scripts.prefixRouterApply(this.statsKey, this.specKey, [this.tag, worker, ...args]);
      args = [];
      room = SLICE_KEYS;
    };
    for (const [i, op] of ops.entries()) {
      const keys = packed[i];
      if (op.op === "clear" || keys === undefined) {
        args.push("C");
        cleared = true;
        continue;
      }
      for (let from = 0; from < op.keys.length; ) {
        const n = Math.min(room, op.keys.length - from);
        args.push(op.op === "add" ? "A" : "R", keys.subarray(KEY_BYTES * from, KEY_BYTES * (from + n)));
        from += n;
        room -= n;
        if (room === 0) await send();
      }
    }
    await send();
    if (cleared) await this.drain();
  }
}

const HEX_KEYS = /^[0-9a-f]*$/;

/**
 * Keys travel to the scripts packed into one binary string (one argument instead of one per key:
 * ioredis spends ~0.6 µs per argument), 8 bytes per key, decoded here rather than in Lua. Anything
 * but 16 lowercase hex digits is a caller bug (two spellings of one key would be two entries).
 */
function packKeys(keys: readonly BlockKey[]): Buffer {
  const joined = keys.join("");
  let ok = joined.length === 2 * KEY_BYTES * keys.length && HEX_KEYS.test(joined);
  for (let i = 0; ok && i < keys.length; i++) ok = keys[i].length === 2 * KEY_BYTES;
  if (!ok) throw new RangeError(`block keys must be 16 lowercase hex digits, e.g. ${JSON.stringify(keys.find((k) => !/^[0-9a-f]{16}$/.test(k)))}`);
  return Buffer.from(joined, "hex");
}
