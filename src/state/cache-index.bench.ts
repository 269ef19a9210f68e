/**
 * Benchmark of the CacheIndex backends (memory, Redis on a private redis-server it starts):
 *   ingest   block events/s through apply() batches (one worker per batch, each key ends up held
 *            by 4 workers), one batch in flight and, for Redis, 8 in flight (ingest shards by worker)
 *   lookup   p50/p99 of lookup() over 512- and 2,048-block chains asking 8 or 64 workers whose
 *            leading runs are spread evenly from 0 to the whole chain (the walk covers the chain);
 *            the chains as the router passes them (keyChain: hex keys and their 64-bit values)
 *   memory   bytes per (block, worker) entry at each of BENCH_ENTRIES, with 1 and 4 workers per
 *            block: V8 heap plus ArrayBuffer delta after GC (the memory backend lives in typed
 *            arrays, outside the JS heap) / Redis INFO used_memory delta
 *   ops      on an index of BENCH_ENTRIES[0] entries: sweep with nothing due, sweep of 20,000
 *            expired speculative entries, clearWorker of one worker's 1/16th, a 200,000-key resync,
 *            eviction at the bound; each with its wall time, the longest event-loop stall
 *            (memory) and the longest Redis script (SLOWLOG, Redis)
 * Run: npx tsx --expose-gc src/state/cache-index.bench.ts   → table on stdout and
 * bench-results/cache-index.json (or BENCH_OUT, a file name in bench-results/). Env: BENCH_ENTRIES (default "1000000,4000000"; Redis takes
 * the first only unless BENCH_REDIS_ALL=1), BENCH_LOOKUPS (1,000), BENCH_BACKENDS ("memory,redis"),
 * BENCH_PIN_REDIS=0 (Redis shares the bench's cores; see REDIS_CPU).
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import Redis from "ioredis";
import { startRedisServer } from "../../e2e/support/redis-server";
import { blockKeyBytes, chainRoot, keyChain, type KeyChain } from "../prefix/block-keys";
import type { CacheIndex } from "./cache-index";
import { MemoryCacheIndex } from "./memory-cache-index";
import { RedisCacheIndex } from "./redis-cache-index";

const ENTRIES = (process.env.BENCH_ENTRIES ?? "1000000,4000000").split(",").map(Number);
const BACKENDS = (process.env.BENCH_BACKENDS ?? "memory,redis").split(",");
const RESYNC_KEYS = 200_000;
const EXPIRING = 20_000;
const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 1_000);
const INGEST_EVENTS = 400_000;
const HOLDERS = 4;
const gc = (globalThis as { gc?: () => void }).gc;

interface Backend {
  readonly name: "memory" | "redis";
  create(): Promise<CacheIndex>;
  /** Bytes the backend holds right now (after a full GC where possible). */
  usedBytes(): Promise<number>;
  /** Redis only: µs the server has spent in EVALSHA so far (INFO commandstats). */
  serverMicros?(): Promise<number>;
  /** Redis only: the longest index script (ms) since the last call (SLOWLOG, which logs those over 1 ms; 0 = none), then resets it. */
  longestCommandMs?(): Promise<number>;
}

/** One fresh string per key (a slice of one long hex string would pin it and cost less than real keys). */
function randomKeys(n: number): string[] {
  const bytes = randomBytes(8 * n);
  return Array.from({ length: n }, (_, i) => bytes.toString("hex", 8 * i, 8 * i + 8));
}

/** Batches of `size` keys for workers w0…w15; with holders h, each key is in h batches of h workers. */
function* batches(events: number, size: number, holders: number): Generator<{ worker: string; keys: string[] }> {
  const stride = size / holders;
  const pool = randomKeys(Math.ceil(events / holders) + size);
  for (let i = 0; (i + 1) * size <= events; i++) {
    yield { worker: `w${i % 16}`, keys: pool.slice(i * stride, i * stride + size) };
  }
}

async function ingest(index: CacheIndex, size: number, inFlight: number): Promise<number> {
  const work = [...batches(INGEST_EVENTS, size, HOLDERS)];
  const start = process.hrtime.bigint();
  let next = 0;
  const lane = async () => {
    while (next < work.length) {
      const b = work[next++];
      await index.apply(b.worker, [{ op: "add", keys: b.keys }]);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return (work.length * size) / seconds;
}

/** A chain as the router passes it to lookup(): keyChain() of the keyer's key bytes (hex keys with their 64-bit values). */
function chain(blocks: number, salt: string): KeyChain {
  const tokens = Array.from({ length: blocks * 16 }, (_, i) => (i * 7919 + salt.length) % 100_000);
  return keyChain(blockKeyBytes(tokens, 16, chainRoot({ hashSeed: salt, model: "bench" })));
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

async function lookupLatency(backend: Backend, index: CacheIndex, blocks: number, workerCount: number) {
  const workers = Array.from({ length: workerCount }, (_, j) => `w${j}`);
  const chains = Array.from({ length: 8 }, (_, c) => chain(blocks, `chain-${c}`));
  for (const [c, keys] of chains.entries()) {
    for (const [j, w] of workers.entries()) {
      const run = Math.round((blocks * ((j + c) % workerCount)) / (workerCount - 1));
      for (let at = 0; at < run; at += 1000) await index.add(w, keys.slice(at, Math.min(run, at + 1000)));
    }
  }
  for (let i = 0; i < 50; i++) await index.lookup(chains[i % chains.length], workers);
  const serverBefore = await backend.serverMicros?.();
  const samples: number[] = [];
  for (let i = 0; i < LOOKUPS; i++) {
    const start = process.hrtime.bigint();
    await index.lookup(chains[i % chains.length], workers);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const serverAfter = await backend.serverMicros?.();
  samples.sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  const serverMs = serverBefore === undefined || serverAfter === undefined ? undefined : round((serverAfter - serverBefore) / LOOKUPS / 1000);
  const longest = await backend.longestCommandMs?.();
  return { blocks, workers: workerCount, p50Ms: round(percentile(samples, 0.5)), p99Ms: round(percentile(samples, 0.99)), serverMeanMs: serverMs, longestScriptMs: longest };
}

async function fill(index: CacheIndex, entries: number, holders: number): Promise<void> {
  for (const b of batches(entries, 1000, holders)) await index.apply(b.worker, [{ op: "add", keys: b.keys }]);
}

async function bytesPerEntry(backend: Backend, target: number, holders: number) {
  const index = await backend.create();
  const before = await backend.usedBytes();
  await fill(index, target, holders);
  const after = await backend.usedBytes();
  const stats = await index.stats();
  const entries = Object.values(stats.workers).reduce((n, w) => n + w.blocks, 0);
  await index.close();
  const perEntry = Math.round(((after - before) / entries) * 10) / 10;
  return { holders, entries, blocks: stats.entries, bytesPerEntry: perEntry };
}

/** Wall time of `work`, and the longest the event loop went without a turn meanwhile. */
async function timed(work: () => Promise<unknown>): Promise<{ ms: number; stallMs: number }> {
  let last = performance.now();
  let stall = 0;
  let running = true;
  const tick = () => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const start = performance.now();
  await work();
  const ms = performance.now() - start;
  tick();
  running = false;
  const round = (x: number) => Math.round(x * 100) / 100;
  return { ms: round(ms), stallMs: round(stall) };
}

/** Index-wide operations on an index of `entries` entries (1 worker per block, 16 workers). */
async function operations(backend: Backend, entries: number) {
  const index = await backend.create();
  await fill(index, entries, 1);
  await backend.longestCommandMs?.();
  const rows: { op: string; items: number; ms: number; stallMs: number; longestScriptMs?: number }[] = [];
  const measure = async (op: string, items: number, work: () => Promise<unknown>) => {
    const t = await timed(work);
    const longest = await backend.longestCommandMs?.();
    rows.push({ op, items, ...t, ...(longest === undefined ? {} : { longestScriptMs: longest }) });
  };
  // The routers' own upkeep: the memory index sweeps due buckets at once; Redis sweeps in bounded
  // scripts until one comes back short (maintain()).
  const drain = async () => (index instanceof RedisCacheIndex ? index.maintain() : (index as MemoryCacheIndex).sweepExpired());
  await measure("sweep, nothing due", 0, drain);
  const spec = randomKeys(EXPIRING);
  for (let at = 0; at < spec.length; at += 1000) await index.addSpeculative(`w${(at / 1000) % 16}`, spec.slice(at, at + 1000), 50);
  await new Promise((r) => setTimeout(r, 1100));
  let swept = 0;
  await measure("sweep of expired speculation", EXPIRING, async () => (swept = await drain()));
  if (swept !== EXPIRING) throw new Error(`swept ${swept} of ${EXPIRING}`);
  const stats = await index.stats();
  await measure("clearWorker", stats.workers.w0.blocks, () => index.clearWorker("w0"));
  const resync = randomKeys(RESYNC_KEYS);
  await measure("replaceWorker (resync)", RESYNC_KEYS, () => index.replaceWorker("w1", resync));
  await index.close();
  if (backend.name === "memory") {
    const bounded = new MemoryCacheIndex({ maxEntries: entries });
    await fill(bounded, entries, 1);
    const extra = batches(100_000, 1000, 1);
    await measure("add past the bound (evicts as many)", 100_000, async () => {
      for (const b of extra) {
        await bounded.apply(b.worker, [{ op: "add", keys: b.keys }]);
        // Ingest batches arrive in turns of the event loop of their own; a resolved await does not yield.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    // One batch of 100,000 keys (within ingest.maxKeysPerBatch): applied in slices that yield.
    const oneBatch = randomKeys(100_000);
    await measure("one batch of 100,000 keys past the bound", 100_000, () => bounded.apply("w0", [{ op: "add", keys: oneBatch }]));
    await bounded.close();
  }
  return rows;
}

async function run(backend: Backend) {
  const ingestRates: { batch: number; inFlight: number; eventsPerSec: number; longestScriptMs?: number }[] = [];
  for (const [batch, inFlight] of backend.name === "redis" ? [[100, 1], [1000, 1], [1000, 8]] : [[100, 1], [1000, 1]]) {
    const index = await backend.create();
    await backend.longestCommandMs?.();
    const eventsPerSec = Math.round(await ingest(index, batch, inFlight));
    ingestRates.push({ batch, inFlight, eventsPerSec, longestScriptMs: await backend.longestCommandMs?.() });
    await index.close();
  }
  const lookups = [];
  for (const blocks of [512, 2048]) {
    for (const workers of [8, 64]) {
      const index = await backend.create();
      lookups.push(await lookupLatency(backend, index, blocks, workers));
      await index.close();
    }
  }
  const sizes = backend.name === "redis" && !process.env.BENCH_REDIS_ALL ? ENTRIES.slice(0, 1) : ENTRIES;
  const memory = [];
  for (const entries of sizes) memory.push(await bytesPerEntry(backend, entries, 1), await bytesPerEntry(backend, entries, HOLDERS));
  const ops = await operations(backend, ENTRIES[0]);
  return { backend: backend.name, ingest: ingestRates, lookup: lookups, memory, ops };
}

function heapUsed(): number {
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/**
 * On a host of 2+ cores (with taskset), Redis runs on the last core and this process, during the
 * Redis rows, on the others: a script's time in SLOWLOG is then its own work, not the time the
 * kernel gave the bench's threads while it ran (on 2 shared cores, 8 ingest batches in flight
 * made a 128-key script "take" 12 ms). A deployment gives Redis a core of its own.
 * BENCH_PIN_REDIS=0: everything shares every core.
 */
const REDIS_CPU = (() => {
  const n = cpus().length;
  if (process.env.BENCH_PIN_REDIS === "0" || n < 2) return undefined;
  return spawnSync("taskset", ["-p", String(process.pid)]).status === 0 ? n - 1 : undefined;
})();

/** Confines every thread of this process (and those it starts later) to the cores Redis does not use. */
function keepOffRedisCore(): void {
  if (REDIS_CPU === undefined) return;
  const out = spawnSync("taskset", ["-a", "-p", "-c", `0-${REDIS_CPU - 1}`, String(process.pid)], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`taskset failed: ${out.stderr}`);
}

async function main() {
  const server = await startRedisServer({ cpu: REDIS_CPU });
  const admin = new Redis(server.url);
  let namespaces = 0;
  const memory: Backend = {
    name: "memory",
    create: async () => new MemoryCacheIndex({ maxEntries: 50_000_000 }),
    usedBytes: async () => heapUsed(),
  };
  const redis: Backend = {
    name: "redis",
    create: async () => {
      await admin.flushall(); // one namespace at a time, so used_memory deltas are this index's
      return RedisCacheIndex.connect({ url: server.url, namespace: `bench${namespaces++}`, commandTimeoutMs: 30_000 });
    },
    usedBytes: async () => Number(/used_memory:(\d+)/.exec(await admin.info("memory"))?.[1]),
    serverMicros: async () => Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(await admin.info("commandstats"))?.[1] ?? 0),
    longestCommandMs: async () => {
      const log = (await admin.call("SLOWLOG", "GET", "1024")) as [number, number, number, string[]][];
      await admin.call("SLOWLOG", "RESET");
      // The index's scripts only: the bench's own FLUSHALL between phases is slow too.
      const scripts = log.filter((entry) => /^eval/i.test(String(entry[3]?.[0])));
      return Math.round(scripts.reduce((max, entry) => Math.max(max, Number(entry[2])), 0) / 10) / 100;
    },
  };
  await admin.call("CONFIG", "SET", "slowlog-log-slower-than", "1000");
  await admin.call("CONFIG", "SET", "slowlog-max-len", "1024");
  try {
    const results = [];
    for (const backend of [memory, redis].filter((b) => BACKENDS.includes(b.name))) {
      if (backend.name === "redis") keepOffRedisCore(); // the memory rows use every core
      results.push(await run(backend));
    }
    const redisVersion = /redis_version:(\S+)/.exec(await admin.info("server"))?.[1];
    const report = {
      date: new Date().toISOString(),
      command: "npx tsx --expose-gc src/state/cache-index.bench.ts",
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, redis: redisVersion, exposeGc: gc !== undefined, redisCpu: REDIS_CPU ?? "shared" },
      params: { entries: ENTRIES, lookups: LOOKUPS, ingestEvents: INGEST_EVENTS, holders: HOLDERS, resyncKeys: RESYNC_KEYS, expiring: EXPIRING },
      results,
    };
    print(results);
    if (!gc) console.log("note: run with --expose-gc for exact heap figures");
    const dir = join(__dirname, "..", "..", "bench-results");
    mkdirSync(dir, { recursive: true });
    const out = join(dir, process.env.BENCH_OUT ?? "cache-index.json");
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`wrote ${out}`);
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

function print(results: Awaited<ReturnType<typeof run>>[]): void {
  const rows: Record<string, string | number>[] = [];
  for (const r of results) {
    for (const i of r.ingest) {
      const longest = i.longestScriptMs === undefined ? "" : `, longest Redis script ${i.longestScriptMs} ms`;
      rows.push({ backend: r.backend, metric: `ingest batch ${i.batch}, ${i.inFlight} in flight`, value: `${i.eventsPerSec.toLocaleString("en")} events/s${longest}` });
    }
    for (const l of r.lookup) {
      const server = l.serverMeanMs === undefined ? "" : `, Redis CPU ${l.serverMeanMs} ms/lookup, longest Redis script ${l.longestScriptMs} ms`;
      rows.push({ backend: r.backend, metric: `lookup ${l.blocks} blocks × ${l.workers} workers`, value: `p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms${server}` });
    }
    for (const m of r.memory) {
      rows.push({ backend: r.backend, metric: `memory, ${m.holders} worker(s)/block, ${m.entries.toLocaleString("en")} entries`, value: `${m.bytesPerEntry} B/entry` });
    }
    for (const o of r.ops) {
      const longest = o.longestScriptMs === undefined ? `longest event-loop stall ${o.stallMs} ms` : `longest Redis script ${o.longestScriptMs} ms`;
      rows.push({ backend: r.backend, metric: `${o.op}, ${o.items.toLocaleString("en")} entries`, value: `${o.ms} ms, ${longest}` });
    }
  }
  console.table(rows);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
