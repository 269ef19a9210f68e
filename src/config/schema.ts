/**
 * The one configuration schema. Parsed and validated before anything listens; every error
 * names the key, the value and the reason (house style 11). docs/config.md describes each key.
 */
import { z } from "zod";

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "expected host:port, e.g. 127.0.0.1:9002")
  .refine((s) => {
    const port = Number(s.slice(s.lastIndexOf(":") + 1));
    return port >= 0 && port <= 65535;
  }, "port must be 0..65535");

const MiB = 1024 * 1024;

/** A duration Node's timers can hold (at most 2^31 − 1 ms, about 24.8 days). */
const timerMs = z.number().int().positive().max(2 ** 31 - 1);

export const extProcSchema = z
  .object({
    listen: hostPort.describe("address the ext_proc gRPC server listens on"),
    maxMessageBytes: z.number().int().min(MiB).default(64 * MiB).describe("largest gRPC message accepted from Envoy"),
    bodyMode: z
      .enum(["auto", "buffered", "full-duplex-streamed"])
      .default("auto")
      .describe("how Envoy sends the request body; auto reads Envoy's protocol_config and assumes buffered without it"),
    debugHeaders: z.boolean().default(true).describe("add x-prefix-router-* headers that explain each decision"),
    fallbackEndpoints: z
      .number()
      .int()
      .min(0)
      .max(16)
      .default(0)
      .describe(
        "eligible workers listed after the pick in x-gateway-destination-endpoint (least-loaded first) for Envoy's override_host retries, e.g. 2; keep 0 with envoy-original-dst.yaml (ORIGINAL_DST reads one address)",
      ),
    reflection: z.boolean().default(false).describe("serve gRPC server reflection on the ext_proc and ingest ports (grpc.health.v1 is always served)"),
    keepaliveTimeMs: timerMs
      .default(30_000)
      .describe("the router pings each Envoy connection this often (as the shipped configs' connection_keepalive does the other way); Envoy's own keepalive pings are always accepted"),
    keepaliveTimeoutMs: timerMs
      .default(10_000)
      .describe("a connection whose ping is not answered in this time is closed: its streams end and release their workers' in-flight counts (a half-open connection cannot hold them)"),
    maxConnectionAgeMs: timerMs
      .default(3_600_000)
      .describe("a connection this old (±10%) is asked to go away (HTTP/2 GOAWAY; Envoy opens a new one): spreads Envoys over router replicas added later"),
    maxConnectionAgeGraceMs: timerMs
      .default(1_800_000)
      .describe("streams still open this long after the GOAWAY are cut (counts released); keep it ≥ maxStreamAgeMs so only the stream age ends long responses"),
    maxStreamAgeMs: timerMs
      .default(1_800_000)
      .describe("the router ends a stream open this long (status OK: Envoy carries on without ext_proc) and releases its count; longer than the longest response, since Envoy holds the stream until the response's last byte"),
    maxConcurrentStreams: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe("streams open at once over all connections; a stream beyond is refused at once with RESOURCE_EXHAUSTED and Envoy's failure_mode_allow decides (true in the shipped buffered configs: the request goes on unrouted)"),
    maxBufferedBodyBytes: z
      .number()
      .int()
      .min(MiB)
      .default(256 * MiB)
      .describe("request body bytes all streams may hold at once (full-duplex bodies until their end, buffered bodies while decided); a body that does not fit is routed by the fallback (reason body-buffer-full) and streamed through"),
  })
  .strict();

export const memoryStoreSchema = z
  .object({
    kind: z.literal("memory"),
    maxEntries: z
      .number()
      .int()
      .positive()
      .default(4_000_000)
      .describe("bound on distinct block keys held; the least recently stored are dropped first"),
  })
  .strict();

export const redisStoreSchema = z
  .object({
    kind: z.literal("redis"),
    url: z.string().regex(/^rediss?:\/\/.+/, "expected redis://host:port[/db] or rediss://…").describe("Redis shared by every router replica"),
    namespace: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 . _ -").default("pr").describe("key namespace (one Redis Cluster hash tag); routers that share a map use the same one"),
    commandTimeoutMs: z.number().int().positive().default(1_000).describe("a Redis command without a reply in this time fails (ingest retries it; lookups have routing.lookupTimeoutMs)"),
  })
  .strict();

export const storeSchema = z.discriminatedUnion("kind", [memoryStoreSchema, redisStoreSchema]);

export const modelSchema = z
  .object({
    name: z.string().min(1).describe("model name as clients send it in the body's `model`"),
    tokenizer: z.string().min(1).describe("folder holding tokenizer.json (or a tiktoken BPE file) and tokenizer_config.json"),
    chatTemplate: z.string().min(1).optional().describe("file overriding tokenizer_config.json's chat_template"),
    tiktokenPattern: z.string().min(1).optional().describe("split pattern for a folder whose tokenizer is a tiktoken BPE file (tiktoken.model or *.tiktoken) instead of tokenizer.json; default: cl100k_base's"),
    aliases: z.array(z.string().min(1)).default([]).describe("other names (e.g. served-model-name, LoRA adapters) routed as this model"),
  })
  .strict();

export const workerSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 . _ -").describe("stable worker name used in debug headers, metrics and KV events"),
    address: hostPort.describe("ip:port Envoy sends the request to (x-gateway-destination-endpoint)"),
    models: z.array(z.string().min(1)).min(1).describe("model names this worker serves"),
    ingestToken: z.string().min(16, "use at least 16 characters").optional().describe("bearer token this worker presents to the ingest API"),
    ingestTokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name")
      .optional()
      .describe("environment variable holding the worker's ingest token (instead of ingestToken)"),
    kvEvents: z
      .string()
      .regex(/^tcp:\/\/.+:\d+$/, "expected tcp://host:port")
      .optional()
      .describe("vLLM's native ZMQ KV-event endpoint; the router subscribes to it"),
    kvEventsReplay: z.string().regex(/^tcp:\/\/.+:\d+$/, "expected tcp://host:port").optional().describe("vLLM's ZMQ replay endpoint, to fill sequence gaps"),
    kvEventsTopic: z.string().default("").describe("ZMQ topic vLLM publishes on (--kv-events-config topic)"),
    metricsUrl: z
      .string()
      .regex(/^https?:\/\/.+/, "expected http://host:port/path")
      .optional()
      .describe("the worker's vLLM Prometheus endpoint, scraped for its load (default http://<address>/metrics, where vLLM serves it)"),
  })
  .strict();

const tlsSchema = z
  .object({
    cert: z.string().min(1).describe("PEM certificate chain file"),
    key: z.string().min(1).describe("PEM private key file"),
    clientCa: z.string().min(1).optional().describe("PEM CA file: require and verify client certificates"),
  })
  .strict();

export const ingestSchema = z
  .object({
    listen: hostPort.describe("address of the KV-event ingest gRPC server (never the ext_proc port)"),
    tls: tlsSchema.optional(),
    requireAuth: z.boolean().default(true).describe("reject pushes without a valid per-worker bearer token"),
    livenessTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(15_000)
      .describe("a worker silent this long (no batch, no heartbeat) stops being a candidate and its entries are purged"),
    maxEventsPerBatch: z.number().int().positive().default(10_000),
    maxKeysPerBatch: z.number().int().positive().default(500_000),
    maxResyncKeys: z.number().int().positive().default(4_000_000),
    maxConcurrentResyncs: z
      .number()
      .int()
      .positive()
      .default(4)
      .describe("resync streams open at once (each may hold up to maxResyncKeys keys until applied); one beyond is refused with RESOURCE_EXHAUSTED and the worker retries it later"),
    maxMessageBytes: z.number().int().min(MiB).default(64 * MiB),
  })
  .strict();

export const loadGuardSchema = z
  .object({
    absolute: z.number().min(0).default(8).describe("in-flight requests above the least-loaded worker tolerated for affinity"),
    relative: z.number().min(1).default(1.5).describe("ratio over the least-loaded worker's in-flight count tolerated for affinity"),
  })
  .strict();

export const costModelSchema = z
  .object({
    prefillBaseMs: z.number().min(0).default(15).describe("t0: fixed cost of an engine step that prefills, ms"),
    prefillPerTokenMs: z.number().min(0).default(0.022).describe("b: ms per uncached prompt token"),
    prefillAttentionMs: z.number().min(0).default(1.31e-6).describe("c: ms per (new token × context token), the attention term"),
    decodeBaseMs: z.number().min(0).default(7).describe("d0: fixed cost of a decode-only step, ms"),
    decodePerKvTokenMs: z.number().min(0).default(5.2e-5).describe("k: ms per KV token the running decodes read in a step"),
    maxBatchedTokens: z.number().int().positive().default(8192).describe("tokens per engine step (the workers' --max-num-batched-tokens)"),
  })
  .strict();

const COST_DEFAULTS = costModelSchema.parse({});

export const loadSchema = z
  .object({
    scrapeMetrics: z.boolean().default(true).describe("scrape each worker's vLLM /metrics for its load (queued and running requests, KV usage); off = the router's own ledger only"),
    scrapeIntervalMs: z.number().int().min(10).default(100).describe("how often each worker's /metrics is scraped"),
    scrapeTimeoutMs: z.number().int().positive().default(250).describe("a scrape without an answer in this time fails (the last sample ages out, decisions never wait)"),
    staleAfterMs: z.number().int().positive().default(1_000).describe("a worker's sample older than this is ignored: its load is the router's ledger alone"),
    expectedOutputTokens: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe("output tokens assumed per request, only to guess when a routed sequence leaves its worker (the scraped running count corrects it)"),
  })
  .strict();

const LOAD_DEFAULTS = loadSchema.parse({});

export const routingSchema = z
  .object({
    policy: z
      .enum(["min-ttft", "sticky-least-loaded", "round-robin", "random", "least-loaded", "consistent-hash"])
      .default("min-ttft")
      .describe("min-ttft: the worker with the lowest estimated time to first token, counting cached prefix, queued work and the delay a recompute imposes on others (docs/routing.md); sticky-least-loaded: the original rule (longest match unless overloaded or gaining too little); the others are cache-blind baselines, for comparison"),
    costModel: costModelSchema.default(COST_DEFAULTS).describe("what a worker's engine costs (DESIGN §7: Llama-3.1-8B bf16 on one H100); min-ttft's estimates"),
    load: loadSchema.default(LOAD_DEFAULTS).describe("where the router's view of each worker's load comes from"),
    consistentHash: z
      .object({
        capacityFactor: z.number().min(1).default(1.25).describe("bounded load: a worker takes at most ceil(c × mean in-flight)"),
        sharedFraction: z.number().gt(0).max(1).default(0.1).describe("a block carried by this fraction of recent requests is shared, not hashed"),
        minShared: z.number().int().min(1).default(8),
        window: z.number().int().min(1).default(1_000).describe("recent requests counted for block popularity"),
      })
      .strict()
      .default({ capacityFactor: 1.25, sharedFraction: 0.1, minShared: 8, window: 1_000 })
      .describe("parameters of policy consistent-hash (hashes a prompt's first non-shared block)"),
    loadGuard: loadGuardSchema.default({ absolute: 8, relative: 1.5 }),
    minGainBlocks: z
      .number()
      .int()
      .min(0)
      .default(16)
      .describe("sticky-least-loaded keeps affinity only when its match beats the least-loaded worker's by this many blocks, a shared head (a prefix most requests carry) counting as held by everyone (0 = always)"),
    speculativeTtlMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe("how long a routed chain counts as cached on the chosen worker before a store event confirms it; 0 disables"),
    lookupTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(50)
      .describe("budget for the cache lookup; past it (or on a store error) the request is routed by the fallback policy with reason store-error"),
    decisionTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(150)
      .describe("budget for the whole decision, from the body's arrival to the answer (parse, render, tokenize, lookup); past it the request is routed by the fallback policy (keep under Envoy's message_timeout)"),
  })
  .strict();

export const limitsSchema = z
  .object({
    maxBodyBytes: z.number().int().positive().default(8 * MiB).describe("larger bodies are routed without tokenizing"),
    maxMessages: z.number().int().positive().default(10_000).describe("chats with more messages are routed without tokenizing"),
    maxPromptChars: z
      .number()
      .int()
      .positive()
      .default(2_000_000)
      .describe("prompts whose rendered fields (messages, tools, documents, template kwargs; keys of tools and documents too) add up to more characters are routed by the fallback without rendering or tokenizing (reason prompt-too-long)"),
  })
  .strict();

export const largeLaneSchema = z
  .object({
    threads: z.number().int().min(0).max(64).optional().describe("threads of the large-prompt lane, besides tokenizerCache.threads; default: half as many, at least one; 0: no lane, every prompt shares the threads"),
    bodyBytes: z
      .number()
      .int()
      .min(16 * 1024)
      .default(64 * 1024)
      .describe("request bodies of this many bytes or more (64 KiB: about 16k tokens of text) are keyed in the lane"),
    nice: z
      .number()
      .int()
      .min(0)
      .max(19)
      .default(0)
      .describe("OS nice value of the lane's threads (Linux sets it per thread; elsewhere they keep the process's priority). 0 (default): the lane's own threads keep small requests from queueing behind large ones, and a saturated CPU is shared evenly. 1–19: small requests also get the CPU first (nice 5: a large prompt's thread gets about a quarter of a contended core) — and under overload large decisions, where cache-aware routing saves the most prefill, are the ones that slow to their deadline; measured in docs/benchmark.md"),
  })
  .strict();

export const tokenizerCacheSchema = z
  .object({
    maxBytes: z.number().int().min(0).default(256 * MiB).describe("memory for cached token ids of repeated text segments (7/8) and block keys of repeated prefixes (1/8), split between the tokenizer threads"),
    threads: z.number().int().min(1).max(64).optional().describe("worker threads that render, tokenize and hash prompts off the event loop (each loads every model's tokenizer); default: one per CPU core, at most 4"),
    bulkNice: z
      .number()
      .int()
      .min(0)
      .max(19)
      .default(19)
      .describe("1–19: a bulk encoder process at this OS nice value encodes work no decision waits for — the rest of a long new prompt that was decided on its head (no worker held the head), keyed after the answer to warm the caches for a follow-up — so it takes only CPU that routing leaves idle; 19 (default): the lowest priority. 0: no process, that work runs in the tokenizer threads at their priority. A decision's own text is always encoded in the threads. Measured in docs/benchmark.md"),
    largeLane: largeLaneSchema.default(largeLaneSchema.parse({})).describe("large prompts are keyed in threads of their own, so a small request never queues behind a large one's milliseconds (measured in docs/benchmark.md)"),
  })
  .strict();

export const adminSchema = z
  .object({
    listen: hostPort.describe("address of the admin HTTP server: /healthz, /metrics, /debug/*"),
  })
  .strict();

export const tracingSchema = z
  .object({
    enabled: z.boolean().default(false).describe("trace every decision with OpenTelemetry (one span per decision, one per stage)"),
    otlpEndpoint: z.string().url().optional().describe("OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces"),
    serviceName: z.string().min(1).default("prefix-router"),
    sampleRatio: z.number().min(0).max(1).default(1).describe("fraction of root decisions sampled (a sampled incoming traceparent is always followed)"),
  })
  .strict();

export const logSchema = z
  .object({
    level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  })
  .strict();

export const configSchema = z
  .object({
    extProc: extProcSchema.describe("the Envoy-facing ext_proc gRPC server"),
    blockSize: z.number().int().min(1).max(4096).default(16).describe("tokens per KV block; must equal the workers' --block-size"),
    hashSeed: z.string().default("0").describe("namespace for prefix keys; equal on every router and reporter"),
    store: storeSchema.default({ kind: "memory", maxEntries: 4_000_000 }),
    models: z.array(modelSchema).min(1).describe("the models routed, each with its tokenizer folder"),
    workers: z.array(workerSchema).min(1).describe("the vLLM replicas"),
    ingest: ingestSchema.optional().describe("the KV-event ingest gRPC server that vllm-patch pushes to; absent = off"),
    admin: adminSchema.optional().describe("the admin HTTP server; absent = off"),
    routing: routingSchema.default(routingSchema.parse({})),
    limits: limitsSchema.default(limitsSchema.parse({})),
    tokenizerCache: tokenizerCacheSchema.default(tokenizerCacheSchema.parse({})),
    tracing: tracingSchema.default({ enabled: false, serviceName: "prefix-router", sampleRatio: 1 }),
    log: logSchema.default({ level: "info" }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const modelNames = new Map<string, number>();
    cfg.models.forEach((m, i) => {
      for (const name of [m.name, ...m.aliases]) {
        if (modelNames.has(name)) ctx.addIssue({ code: "custom", path: ["models", i, "name"], message: `model name ${JSON.stringify(name)} is declared twice` });
        modelNames.set(name, i);
      }
    });
    const listeners = [["extProc", cfg.extProc.listen], ["ingest", cfg.ingest?.listen], ["admin", cfg.admin?.listen]].filter(
      (l): l is [string, string] => typeof l[1] === "string" && !l[1].endsWith(":0"),
    );
    listeners.forEach(([name, addr], i) => {
      const clash = listeners.slice(0, i).find(([, other]) => other === addr);
      if (clash) ctx.addIssue({ code: "custom", path: [name, "listen"], message: `${addr} is already used by ${clash[0]}.listen; each server needs its own port` });
    });
    const ids = new Set<string>();
    const addresses = new Set<string>();
    // A token names one worker: a shared one would let a worker push (or resync) as another.
    const tokenOwners = new Map<string, string>();
    const tokenEnvOwners = new Map<string, string>();
    cfg.workers.forEach((w, i) => {
      if (ids.has(w.id)) ctx.addIssue({ code: "custom", path: ["workers", i, "id"], message: `duplicate worker id ${JSON.stringify(w.id)}` });
      if (addresses.has(w.address)) ctx.addIssue({ code: "custom", path: ["workers", i, "address"], message: `duplicate worker address ${w.address}` });
      ids.add(w.id);
      addresses.add(w.address);
      const tokenClash = w.ingestToken === undefined ? undefined : tokenOwners.get(w.ingestToken);
      if (tokenClash) ctx.addIssue({ code: "custom", path: ["workers", i, "ingestToken"], message: `the same token as worker ${JSON.stringify(tokenClash)}: each worker needs its own` });
      if (w.ingestToken) tokenOwners.set(w.ingestToken, w.id);
      const envClash = w.ingestTokenEnv === undefined ? undefined : tokenEnvOwners.get(w.ingestTokenEnv);
      if (envClash) ctx.addIssue({ code: "custom", path: ["workers", i, "ingestTokenEnv"], message: `the same variable as worker ${JSON.stringify(envClash)}: each worker needs its own token` });
      if (w.ingestTokenEnv) tokenEnvOwners.set(w.ingestTokenEnv, w.id);
      if (w.ingestToken && w.ingestTokenEnv) ctx.addIssue({ code: "custom", path: ["workers", i, "ingestTokenEnv"], message: "set ingestToken or ingestTokenEnv, not both" });
      if (cfg.ingest?.requireAuth !== false && cfg.ingest && !w.ingestToken && !w.ingestTokenEnv && !w.kvEvents)
        ctx.addIssue({ code: "custom", path: ["workers", i], message: "ingest.requireAuth is on: give the worker an ingestToken or ingestTokenEnv (or use kvEvents)" });
      w.models.forEach((m, j) => {
        if (!modelNames.has(m)) ctx.addIssue({ code: "custom", path: ["workers", i, "models", j], message: `unknown model ${JSON.stringify(m)}: not in models[]` });
      });
    });
  });

export type RouterConfig = z.infer<typeof configSchema>;
export type ModelConfig = RouterConfig["models"][number];
export type WorkerConfig = RouterConfig["workers"][number];
export type RoutingConfig = RouterConfig["routing"];
export type LoadGuardConfig = RoutingConfig["loadGuard"];
export type CostModelConfig = RoutingConfig["costModel"];
export type LoadConfig = RoutingConfig["load"];
export type LimitsConfig = RouterConfig["limits"];
export type IngestConfig = NonNullable<RouterConfig["ingest"]>;
