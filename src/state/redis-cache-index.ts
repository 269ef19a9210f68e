/**
 * CacheIndex on Redis, shared by every router replica. Work is cut into Lua scripts of bounded
 * size, so no call holds Redis for long (every script is atomic; a call of up to SLICE_KEYS keys is
 * one script, one round trip); the clock is Redis TIME, so all routers agree on when a speculative
 * entry expires. Layout, scripts and measured cost: docs/redis-layout.md.
 *
 *   {ns}:b:<block key>  STRING  2 bits per worker slot: confirmed, speculative (see prelude)
 *   {ns}:spec           ZSET    "<len>:<block key><worker>" → expiry ms of speculative entries
 *   {ns}:w:<worker>     SET     the worker's block keys
 *   {ns}:slot           HASH    worker → slot;  {ns}:free ZSET of released slots
 *   {ns}:drain          SET     detached slots still holding bits; {ns}:gone:<slot> SET their keys
 *   {ns}:stats          HASH    entries, nextslot, c:|s:|t:<worker> (confirmed, speculative,
 *                               last own report in Redis ms)
 *
 * Parameters: namespace (default "pr"; one per index, e.g. one per model), and for a client this
 * index creates: commandTimeoutMs (default 1000), connectTimeoutMs (default 1000), redisOptions.
 */
import Redis, { type Cluster, type RedisOptions } from "ioredis";
import type { BlockKey } from "../prefix/block-keys";
import type { CacheIndex, IndexOp, IndexStats, WorkerId, WorkerIndexStats } from "./cache-index";
import { APPLY_LUA, DRAIN_LUA, LOOKUP_LUA, PURGE_IDLE_LUA, SWAP_LUA, SWEEP_LUA } from "./redis-scripts";

/**
 * Keys per script: a store costs Redis ~5 µs of CPU per key, so 512 keys hold it ~3 ms. Larger
 * batches are applied in order, one slice per script; a lookup may see part of such a batch.
 */
export const SLICE_KEYS = 512;
/** Blocks walked per lookup script (~1 µs each); a longer chain continues for the workers still matching. */
export const LOOKUP_SLICE = 2048;
/** Expired speculative entries dropped per sweep script, and entries freed per drain script (~5 µs each). */
const SWEEP_LIMIT = 500;
/** The name a resync is built under until it is swapped in (never a configured worker id). */
const shadowOf = (worker: WorkerId) => `${worker}\u0000resync`;

export interface RedisCacheIndexOptions {
  /** A client the caller owns (close() leaves it open). Give `client` or `url`, not both. */
  readonly client?: Redis | Cluster;
  /** redis://[user:pass@]host:port[/db]; the index creates and owns a fail-fast client. */
  readonly url?: string;
  /** Key namespace, wrapped in a hash tag: "pr" → keys "{pr}:…". Default "pr". */
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
type ScriptCall = (...args: (string | number | readonly (string | number)[])[]) => Promise<unknown>;
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

  constructor(options: RedisCacheIndexOptions) {
    const namespace = options.namespace ?? "pr";
    if (namespace === "" || /[{}]/.test(namespace)) {
      throw new RangeError(`namespace must be non-empty without "{" or "}", got ${JSON.stringify(namespace)}`);
    }
    if ((options.client === undefined) === (options.url === undefined)) {
      throw new RangeError("give exactly one of client or url");
    }
    this.namespace = namespace;
    this.tag = `{${namespace}}`;
    this.statsKey = `${this.tag}:stats`;
    this.specKey = `${this.tag}:spec`;
    this.owned = options.client === undefined;
    this.client =
      options.client ??
      new Redis(options.url!, {
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
    for (let from = 0; from < keys.length; from += SLICE_KEYS) {
      const slice = keys.slice(from, from + SLICE_KEYS);
      const packed = slice.join("");
      const args = [this.tag, worker, keyWidth(slice, packed), "S", Math.ceil(ttlMs), packed];
      await this.scripts.prefixRouterApply(this.statsKey, this.specKey, args);
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
  async lookup(keys: readonly BlockKey[], workers: readonly WorkerId[]): Promise<ReadonlyMap<WorkerId, number>> {
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
    // Full key names, so the script only cuts the string (building names in Lua costs more).
    const prefix = `${this.tag}:b:`;
    let names = "";
    for (const key of keys) names += prefix + key;
    const prefixBytes = Buffer.byteLength(prefix);
    const width = prefixBytes + keyWidth(keys, names, prefixBytes);
    const reply = (await this.scripts.prefixRouterLookup(this.statsKey, this.specKey, this.tag, width, names, asked)) as number[];
    asked.forEach((w, i) => runs.set(w, Number(reply[i])));
    return runs;
  }

  /**
   * Drops up to `limit` expired speculative entries (earliest expiry first; lookups also drop the
   * ones they meet). Bounded work per call: call again while it returns `limit`.
   */
  async sweepExpired(limit = 1000): Promise<number> {
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
    await this.scripts.prefixRouterApply(this.statsKey, this.specKey, [this.tag, worker, 1, "R", ""]);
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

  /** Frees the entries of detached slots, one bounded script at a time, until none is left. */
  private async drain(maxSteps = Number.POSITIVE_INFINITY): Promise<void> {
    for (let step = 0; step < maxSteps; step++) {
      const [, left] = (await this.scripts.prefixRouterDrain(this.statsKey, this.specKey, [this.tag, SWEEP_LIMIT])) as [number, number];
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
    let args: (string | number)[] = [];
    let width = 0;
    let room = SLICE_KEYS;
    let cleared = false;
    // Checked whole before the first script, so a bad key never leaves a batch half applied.
    for (const op of ops) {
      if (op.op === "clear" || op.keys.length === 0) continue;
      const w = keyWidth(op.keys, op.keys.join(""));
      if (width !== 0 && w !== width) throw new RangeError(`block keys of ${w} and ${width} bytes in one batch`);
      width = w;
    }
    const send = async () => {
      if (args.length === 0) return;
      await this.scripts.prefixRouterApply(this.statsKey, this.specKey, [this.tag, worker, width || 1, ...args]);
      args = [];
      room = SLICE_KEYS;
    };
    for (const op of ops) {
      if (op.op === "clear") {
        args.push("C");
        cleared = true;
        continue;
      }
      for (let from = 0; from < op.keys.length; ) {
        const slice = op.keys.slice(from, from + room);
        args.push(op.op === "add" ? "A" : "R", slice.join(""));
        from += slice.length;
        room -= slice.length;
        if (room === 0) await send();
      }
    }
    await send();
    if (cleared) await this.drain();
  }
}

/**
 * Keys travel packed into one string that Lua cuts by bytes, so they must share one length in
 * bytes (16 hex digits per docs/prefix-keys.md); anything else is a caller bug. `packed` holds
 * the keys, each after `extra` bytes of ASCII prefix.
 */
function keyWidth(keys: readonly BlockKey[], packed: string, extra = 0): number {
  const width = keys[0].length;
  let ok = width > 0 && Buffer.byteLength(packed) === (width + extra) * keys.length;
  for (let i = 1; ok && i < keys.length; i++) ok = keys[i].length === width;
  if (!ok) throw new RangeError(`block keys must be ASCII of one non-zero length, e.g. ${JSON.stringify(keys[0])}`);
  return width;
}
