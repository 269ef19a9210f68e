/**
 * The soak: the chat mix with distinct conversations (every conversation brings its own document)
 * through one router process over real gRPC (the Envoy-sequence client), for a fixed number of
 * requests. The router runs with --expose-gc, so its admin server answers GET /debug/heap: V8 heap
 * in use after a full collection, main thread plus tokenizer threads, and RSS. Sampled at even
 * request counts; "flat" = the least-squares line through the last half of the samples changes by
 * at most `maxGrowth` of its mean over that half — for heap after GC and for RSS alike.
 */
import { EnvoyExtProcClient } from "../support/envoy-ext-proc-client";
import { freePort } from "../support/free-port";
import { QWEN3_TOKENIZER } from "../support/router-fixture";
import { ChatTraffic } from "./support/chat-traffic";
import { machine, metricValue, percentile, round, type RunHeader } from "./support/figures";
import { scrapeAdmin, startRouterChild } from "./support/router-child";

export interface SoakOptions {
  readonly requests: number;
  readonly samples: number;
  readonly concurrency: number;
  readonly seed: number;
  /** tokenizerCache.maxBytes; small in the short run so the caches are full early. */
  readonly cacheBytes?: number;
  /**
   * routing.speculativeTtlMs. The live speculative entries are the last TTL's worth of requests, so
   * their memory follows the request rate; the short run makes that set small, so what it measures
   * is what stays.
   */
  readonly speculativeTtlMs?: number;
  readonly maxGrowth: number;
  readonly log: (line: string) => void;
}

export interface MemorySample {
  readonly requests: number;
  readonly atS: number;
  readonly heapAfterGcMiB: number;
  readonly rssMiB: number;
  /** What the tokenizer caches say they hold (prefix_router_tokenizer_cache_bytes). */
  readonly tokenizerCacheMiB: number;
  /** Heap after GC less the tokenizer caches: what must stay flat while the caches still fill. */
  readonly heapOutsideCachesMiB: number;
}

export interface CurveFit {
  /** Change of the fitted line over the last half, as a share of the mean there. */
  readonly growth: number;
  readonly firstMiB: number;
  readonly lastMiB: number;
  readonly minMiB: number;
  readonly maxMiB: number;
}

export interface SoakReport extends RunHeader<Omit<SoakOptions, "log">> {
  readonly requests: number;
  readonly seconds: number;
  readonly late: number;
  readonly failed: number;
  readonly decisions: Record<string, number>;
  readonly latencyP99Ms: number | null;
  readonly samples: readonly MemorySample[];
  readonly heapLastHalf: CurveFit;
  readonly rssLastHalf: CurveFit;
  readonly outsideCachesLastHalf: CurveFit;
  /** Heap after GC and RSS flat within maxGrowth over the last half. */
  readonly flat: boolean;
  /** Heap outside the tokenizer caches flat within maxGrowth: no leak, even while the caches fill. */
  readonly flatOutsideCaches: boolean;
}

const MiB = 1024 * 1024;

interface HeapReply {
  totalHeapUsedAfterGc: number;
  rss: number;
}

export async function runSoak(o: SoakOptions, command: string): Promise<SoakReport> {
  const [extProc, admin] = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
  const router = await startRouterChild({
    name: "soak",
    exposeGc: true,
    config: {
      extProc: { listen: extProc },
      admin: { listen: admin },
      models: [{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }],
      workers: Array.from({ length: 4 }, (_, i) => ({ id: `w${i + 1}`, address: `10.0.0.${i + 1}:8000`, models: ["qwen3"] })),
      routing: { load: { scrapeMetrics: false }, ...(o.speculativeTtlMs !== undefined ? { speculativeTtlMs: o.speculativeTtlMs } : {}) },
      ...(o.cacheBytes !== undefined ? { tokenizerCache: { maxBytes: o.cacheBytes } } : {}),
      log: { level: "warn" },
    },
  });
  const client = new EnvoyExtProcClient(extProc);
  const samples: MemorySample[] = [];
  const latencies: number[] = [];
  const decisions: Record<string, number> = {};
  let late = 0;
  let failed = 0;
  let done = 0;
  const t0 = performance.now();
  const every = Math.max(1, Math.floor(o.requests / o.samples));
  let sampling: Promise<void> = Promise.resolve();
  const sample = async (requests: number) => {
    const heap = JSON.parse(await scrapeAdmin(router.adminUrl, "/debug/heap")) as HeapReply;
    const cacheBytes = metricValue(await scrapeAdmin(router.adminUrl, "/metrics"), "prefix_router_tokenizer_cache_bytes");
    const s = {
      requests,
      atS: round((performance.now() - t0) / 1000)!,
      heapAfterGcMiB: round(heap.totalHeapUsedAfterGc / MiB, 2)!,
      rssMiB: round(heap.rss / MiB, 1)!,
      tokenizerCacheMiB: round(cacheBytes / MiB, 2)!,
      heapOutsideCachesMiB: round((heap.totalHeapUsedAfterGc - cacheBytes) / MiB, 2)!,
    };
    samples.push(s);
    const col = (x: number, width: number) => String(x).padStart(width);
    o.log(`${col(s.requests, 8)} requests  ${col(s.atS, 7)} s   heap after GC ${col(s.heapAfterGcMiB, 8)} MiB   RSS ${col(s.rssMiB, 7)} MiB   tokenizer caches ${col(s.tokenizerCacheMiB, 7)} MiB   heap outside them ${col(s.heapOutsideCachesMiB, 7)} MiB`);
  };
  try {
    await sample(0);
    const traffic = new ChatTraffic({
      clients: () => [client],
      replicas: [],
      concurrency: o.concurrency,
      seed: o.seed,
      requests: o.requests,
      onRecord: (r) => {
        done++;
        if (r.outcome === "late") late++;
        else if (r.outcome === "failed") failed++;
        else latencies.push(r.latencyMs);
        const d = r.decision === "fallback" ? `fallback/${r.reason}` : (r.decision ?? r.outcome);
        decisions[d] = (decisions[d] ?? 0) + 1;
        if (done % every === 0) sampling = sampling.then(() => sample(done));
      },
    });
    traffic.start();
    await traffic.done();
    await sampling;
    const half = samples.filter((s) => s.requests >= o.requests / 2);
    const heapLastHalf = fit(half, (s) => s.heapAfterGcMiB);
    const rssLastHalf = fit(half, (s) => s.rssMiB);
    const outsideCachesLastHalf = fit(half, (s) => s.heapOutsideCachesMiB);
    return {
      command,
      machine: machine(),
      options: { requests: o.requests, samples: o.samples, concurrency: o.concurrency, seed: o.seed, cacheBytes: o.cacheBytes, speculativeTtlMs: o.speculativeTtlMs, maxGrowth: o.maxGrowth },
      requests: done,
      seconds: round((performance.now() - t0) / 1000)!,
      late,
      failed,
      decisions,
      latencyP99Ms: round(percentile(latencies, 99)),
      samples,
      heapLastHalf,
      rssLastHalf,
      outsideCachesLastHalf,
      flat: Math.abs(heapLastHalf.growth) <= o.maxGrowth && Math.abs(rssLastHalf.growth) <= o.maxGrowth,
      flatOutsideCaches: Math.abs(outsideCachesLastHalf.growth) <= o.maxGrowth,
    };
  } finally {
    client.close();
    await router.stop();
  }
}

/** Least-squares line of value over request count; its change across the range as a share of the mean. */
function fit(samples: readonly MemorySample[], value: (s: MemorySample) => number): CurveFit {
  const xs = samples.map((s) => s.requests);
  const ys = samples.map(value);
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  const span = Math.max(...xs) - Math.min(...xs);
  return { growth: round((slope * span) / my, 4)!, firstMiB: ys[0], lastMiB: ys[n - 1], minMiB: Math.min(...ys), maxMiB: Math.max(...ys) };
}

export function describeSoak(r: SoakReport): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return [
    `${r.requests} requests in ${r.seconds} s (${r.late} late, ${r.failed} failed, p99 ${r.latencyP99Ms} ms); decisions ${JSON.stringify(r.decisions)}`,
    `last half: heap after GC ${r.heapLastHalf.firstMiB} → ${r.heapLastHalf.lastMiB} MiB (fitted change ${pct(r.heapLastHalf.growth)}), RSS ${r.rssLastHalf.firstMiB} → ${r.rssLastHalf.lastMiB} MiB (fitted change ${pct(r.rssLastHalf.growth)}): ${r.flat ? "flat" : "NOT flat"} within ${pct(r.options.maxGrowth)}`,
    `last half, heap outside the tokenizer caches: ${r.outsideCachesLastHalf.firstMiB} → ${r.outsideCachesLastHalf.lastMiB} MiB (fitted change ${pct(r.outsideCachesLastHalf.growth)}): ${r.flatOutsideCaches ? "flat" : "NOT flat"} within ${pct(r.options.maxGrowth)}`,
  ].join("\n");
}
