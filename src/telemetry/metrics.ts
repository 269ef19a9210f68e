/**
 * The router's Prometheus metrics (prom-client), served on the admin port at /metrics.
 * Counters the inner code keeps as plain numbers (ingest, ZMQ, tokenizer cache, index size) are
 * read at scrape time through collect(), so no inner module imports prom-client.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { RouterConfig } from "../config/schema";
import type { StreamOutcome } from "../extproc/stream-outcome";
import type { EventPaths } from "../ingest/event-paths";
import type { InFlightTracker } from "../routing/in-flight-tracker";
import type { WorkerLoad } from "../routing/worker-view";
import type { CacheIndex } from "../state/cache-index";
import type { TokenizerRegistry } from "../tokenize/tokenizer-registry";
import { InstrumentedCacheIndex } from "./instrumented-cache-index";

const MICRO_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const BLOCK_BUCKETS = [0, 1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

export interface MetricsSources {
  readonly config: Pick<RouterConfig, "workers">;
  readonly index: CacheIndex;
  readonly inFlight: InFlightTracker;
  readonly tokenizers: Pick<TokenizerRegistry, "stats">;
  readonly events: EventPaths | null;
  /** Each worker's load as the policy sees it. */
  readonly loads: () => ReadonlyMap<string, WorkerLoad>;
  /** The ext_proc server's stream bounds (extproc/stream-gate.ts). */
  readonly streams?: { readonly openStreams: number; readonly refused: number; readonly bufferedBytes: number };
}

export class RouterMetrics {
  readonly registry = new Registry();
  private readonly decisionSeconds: Histogram<"outcome">;
  private readonly decisions: Counter<"outcome" | "reason">;
  private readonly headDecisions: Counter;
  private readonly matchedBlocks: Histogram<"outcome">;
  private readonly promptBlocks: Histogram<"outcome">;
  private readonly streams: Counter<"end">;
  private readonly decidedBy: Counter<"term">;
  private readonly scrapes: Counter<"worker" | "result">;
  private readonly scrapeSeconds: Histogram;
  private readonly served: Counter<"served">;
  readonly storeSeconds: Histogram<"op">;
  readonly storeErrors: Counter<"op">;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "prefix_router_process_" });
    this.decisionSeconds = new Histogram({ name: "prefix_router_decision_duration_seconds", help: "Time to decide one request (parse, template, tokenize, hash, lookup, pick)", labelNames: ["outcome"], buckets: MICRO_BUCKETS, registers });
    this.decisions = new Counter({ name: "prefix_router_decisions_total", help: "Routing decisions by outcome (hit, miss, fallback, reject) and reason", labelNames: ["outcome", "reason"], registers });
    this.matchedBlocks = new Histogram({ name: "prefix_router_matched_blocks", help: "Cached leading blocks of the chosen worker per decision", labelNames: ["outcome"], buckets: BLOCK_BUCKETS, registers });
    this.promptBlocks = new Histogram({ name: "prefix_router_prompt_blocks", help: "Full blocks in the prompt per decision", labelNames: ["outcome"], buckets: BLOCK_BUCKETS, registers });
    this.headDecisions = new Counter({ name: "prefix_router_head_decisions_total", help: "Decisions keyed on the prompt's head only: no worker held all of it, so no cached prefix reached further", registers });
    this.decidedBy = new Counter({ name: "prefix_router_decided_by_total", help: "min-ttft decisions by the term that decided (cache, load, shared-prefix, tie, only-candidate)", labelNames: ["term"], registers });
    this.scrapes = new Counter({ name: "prefix_router_worker_scrapes_total", help: "Scrapes of the workers' vLLM /metrics (result: ok, failed)", labelNames: ["worker", "result"], registers });
    this.scrapeSeconds = new Histogram({ name: "prefix_router_worker_scrape_duration_seconds", help: "Round trip of a successful /metrics scrape", buckets: MICRO_BUCKETS, registers });
    this.streams = new Counter({ name: "prefix_router_extproc_streams_total", help: "Envoy ext_proc streams by how they ended", labelNames: ["end"], registers });
    this.served = new Counter({
      name: "prefix_router_served_total",
      help: "Routed requests by where Envoy reports they were served: picked, fallback (a listed fallback after a retry) or elsewhere (a replica the router did not name: a stale or unusable pick)",
      labelNames: ["served"],
      registers,
    });
    for (const served of ["picked", "fallback", "elsewhere"] satisfies NonNullable<StreamOutcome["served"]>[]) this.served.inc({ served }, 0);
    this.storeSeconds = new Histogram({ name: "prefix_router_store_duration_seconds", help: "Cache index call latency", labelNames: ["op"], buckets: MICRO_BUCKETS, registers });
    this.storeErrors = new Counter({ name: "prefix_router_store_errors_total", help: "Cache index calls that failed", labelNames: ["op"], registers });
  }

  /** Wraps the index so its calls are timed and failures counted. */
  instrument(index: CacheIndex): CacheIndex {
    return new InstrumentedCacheIndex(index, this.storeSeconds, this.storeErrors);
  }

  /** Called once per ext_proc stream, when it ends. */
  recordStream(o: StreamOutcome): void {
    this.streams.inc({ end: o.end });
    const r = o.result;
    if (!r) return;
    if (r.kind === "reject") {
      this.decisions.inc({ outcome: "reject", reason: r.reason });
      this.decisionSeconds.observe({ outcome: "reject" }, r.decisionMicros / 1e6);
      return;
    }
    this.decisions.inc({ outcome: r.outcome, reason: r.reason ?? "" });
    if (r.decidedBy) this.decidedBy.inc({ term: r.decidedBy });
    if (r.headOnly) this.headDecisions.inc();
    if (o.served) this.served.inc({ served: o.served });
    this.decisionSeconds.observe({ outcome: r.outcome }, r.decisionMicros / 1e6);
    this.matchedBlocks.observe({ outcome: r.outcome }, r.matchedBlocks);
    this.promptBlocks.observe({ outcome: r.outcome }, r.totalBlocks);
  }

  /** One scrape of a worker's /metrics: latency when it answered, null when it failed. */
  recordScrape(worker: string, latencyMs: number | null): void {
    this.scrapes.inc({ worker, result: latencyMs === null ? "failed" : "ok" });
    if (latencyMs !== null) this.scrapeSeconds.observe(latencyMs / 1000);
  }

  /** Gauges and counters read from the running components at scrape time. */
  observe(sources: MetricsSources): void {
    const registers = [this.registry];
    const workers = sources.config.workers.map((w) => w.id);
    new Gauge({
      name: "prefix_router_worker_in_flight",
      help: "Requests routed to the worker whose Envoy stream has not ended",
      labelNames: ["worker"],
      registers,
      collect() {
        for (const w of workers) this.set({ worker: w }, sources.inFlight.inFlight(w));
      },
    });
    new Gauge({
      name: "prefix_router_worker_load",
      help: "Each worker's load as the policy sees it (what: queued_tokens, queued_ms, running, kv_tokens, sample_age_ms; -1 age = never scraped)",
      labelNames: ["worker", "what"],
      registers,
      collect() {
        for (const [w, l] of sources.loads()) {
          this.set({ worker: w, what: "queued_tokens" }, l.queuedTokens);
          this.set({ worker: w, what: "queued_ms" }, l.queuedMs);
          this.set({ worker: w, what: "running" }, l.running);
          this.set({ worker: w, what: "kv_tokens" }, l.kvTokens);
          this.set({ worker: w, what: "sample_age_ms" }, l.sampleAgeMs ?? -1);
        }
      },
    });
    new Gauge({
      name: "prefix_router_worker_candidate",
      help: "1 when the worker is a routing candidate, 0 when it stopped reporting KV events",
      labelNames: ["worker"],
      registers,
      collect() {
        const stale = sources.events?.service.staleWorkers() ?? new Set<string>();
        for (const w of workers) this.set({ worker: w }, stale.has(w) ? 0 : 1);
      },
    });
    new Gauge({
      name: "prefix_router_index_blocks",
      help: "Blocks the index holds per worker (kind: confirmed | speculative), and distinct keys (worker=\"\")",
      labelNames: ["worker", "kind"],
      registers,
      async collect() {
        const stats = await sources.index.stats();
        this.set({ worker: "", kind: "distinct" }, stats.entries);
        for (const [w, s] of Object.entries(stats.workers)) {
          this.set({ worker: w, kind: "confirmed" }, s.blocks);
          this.set({ worker: w, kind: "speculative" }, s.speculative);
        }
      },
    });
    mirroredCounter(this.registry, "prefix_router_tokenizer_segments_total", "Text segments looked up in the tokenizer cache", ["result"], () => {
      const s = sources.tokenizers.stats();
      return [
        [{ result: "hit" }, s.segmentHits],
        [{ result: "miss" }, s.segmentMisses],
      ];
    });
    mirroredCounter(this.registry, "prefix_router_tokenizer_background_dropped_total", "Long new prompts decided on their head whose rest was not keyed after the answer (2 at once and 16 in line per tokenizer thread were already)", [], () => [
      [{}, sources.tokenizers.stats().backgroundDropped ?? 0],
    ]);
    mirroredCounter(this.registry, "prefix_router_tokenizer_body_bytes_reused_total", "Request body bytes a tokenizer thread did not decode or parse again: they repeated a recent body's up to the end of one of its messages", [], () => [
      [{}, sources.tokenizers.stats().bodyBytesReused ?? 0],
    ]);
    new Gauge({
      name: "prefix_router_tokenizer_cache_bytes",
      help: "Memory held by cached token ids of repeated text segments",
      registers,
      collect() {
        this.set(sources.tokenizers.stats().cachedBytes);
      },
    });
    if (sources.streams) this.observeStreams(sources.streams);
    if (sources.events) this.observeIngest(sources.events);
  }

  private observeStreams(streams: NonNullable<MetricsSources["streams"]>): void {
    const registers = [this.registry];
    new Gauge({
      name: "prefix_router_extproc_streams_open",
      help: "Envoy ext_proc streams open now (bound: extProc.maxConcurrentStreams)",
      registers,
      collect() {
        this.set(streams.openStreams);
      },
    });
    new Gauge({
      name: "prefix_router_extproc_buffered_body_bytes",
      help: "Request body bytes the ext_proc streams hold now (bound: extProc.maxBufferedBodyBytes)",
      registers,
      collect() {
        this.set(streams.bufferedBytes);
      },
    });
    mirroredCounter(this.registry, "prefix_router_extproc_streams_refused_total", "ext_proc streams refused with RESOURCE_EXHAUSTED: extProc.maxConcurrentStreams were open", [], () => [[{}, streams.refused]]);
  }

  private observeIngest(events: EventPaths): void {
    const c = events.service.counters;
    mirroredCounter(this.registry, "prefix_router_ingest_total", "KV-event ingest counters (what: batches, events, keys, duplicates, gaps, resync_requests, resyncs, resync_keys, epoch_changes, stale_purges)", ["what"], () =>
      Object.entries({
        batches: c.batches,
        events: c.events,
        keys: c.keys,
        duplicates: c.duplicates,
        gaps: c.gaps,
        resync_requests: c.resyncRequests,
        resyncs: c.resyncs,
        resync_keys: c.resyncKeys,
        epoch_changes: c.epochChanges,
        stale_purges: c.stalePurges,
      }).map(([what, v]) => [{ what }, v]),
    );
    mirroredCounter(this.registry, "prefix_router_ingest_rejections_total", "Ingest calls rejected (code: unauthenticated, permission-denied, invalid-argument, resource-exhausted)", ["code"], () =>
      Object.entries(c.rejections).map(([code, v]) => [{ code }, v]),
    );
    new Gauge({
      name: "prefix_router_ingest_lag_seconds",
      help: "Worker clock to router clock delay of the last applied pushed batch",
      registers: [this.registry],
      collect() {
        if (c.lastLagMs !== null) this.set(c.lastLagMs / 1000);
      },
    });
    mirroredCounter(this.registry, "prefix_router_zmq_total", "vLLM native ZMQ KV-event subscriber counters per worker", ["worker", "what"], () =>
      [...events.subscribers].flatMap(([worker, sub]) => {
        const s = sub.stats();
        return (["batches", "events", "gaps", "replays", "duplicates", "restarts", "clears", "untranslatable", "rejected", "malformed"] as const).map(
          (what) => [{ worker, what }, s[what]] as [Record<string, string>, number],
        );
      }),
    );
  }
}

/**
 * A Prometheus counter that mirrors a plain monotonic number kept elsewhere: at each scrape it
 * adds the growth since the last scrape, so the inner code needs no prom-client.
 */
function mirroredCounter(registry: Registry, name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, value] of read()) {
        const id = JSON.stringify(labels);
        const delta = value - (last.get(id) ?? 0);
        if (delta > 0) this.inc(labels, delta);
        else if (!last.has(id)) this.inc(labels, 0);
        last.set(id, value);
      }
    },
  });
}
