/**
 * The real-Envoy test stack: simulated vLLM replicas (src/sim, the real OpenAI-compatible server
 * with SSE streaming), the router in this process (real gRPC on a free port, real tokenizer), and a
 * real Envoy running a shipped config (envoy/*.yaml) rendered with their ports. Each replica keeps
 * what it received, keyed by the client's `x-test-id` header, so a test can check what Envoy forwarded.
 */
import { createHash } from "node:crypto";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { RouterConfig } from "../../src/config/schema";
import { H100_LLAMA_8B } from "../../src/sim/replica-model";
import { startSimServer, type ReceivedRequest, type SimServer } from "../../src/sim/sim-server";
import { loadTokenizerRegistry, type ModelTokenizer } from "../../src/tokenize/tokenizer-registry";
import { startEnvoy, type EnvoyBinary, type RunningEnvoy } from "./envoy-process";
import { QWEN3_TOKENIZER, testConfig, type RunningRouter } from "./router-fixture";
import { startRouterService } from "../../src/router-service";
import { silentLogger } from "../../src/telemetry/logger";
import { EnvoyExtProcClient } from "./envoy-ext-proc-client";

export const TEST_ID_HEADER = "x-test-id";
/** Small, fast replicas: the cost model at 1/50 of its speed, enough KV blocks for the tests. */
export const TEST_ENGINE = { blockSize: 16, totalBlocks: 8192, maxBatchedTokens: 8192, maxSeqs: 256, cost: H100_LLAMA_8B };
export const TEST_TIME_SCALE = 0.02;
/** The replicas refuse (400) prompts over this, without tokenizing them: large-body tests stay cheap. */
export const REPLICA_LIMITS = { maxBodyBytes: 32 * 1024 * 1024, maxMessages: 10_000, maxPromptChars: 2_000_000 };

export interface Seen {
  readonly replica: string;
  readonly headers: ReceivedRequest["headers"];
  readonly bodySha256: string;
  readonly bodyBytes: number;
}

export interface TestReplica {
  readonly id: string;
  server: SimServer;
}

let tokenizer: Promise<ModelTokenizer> | undefined;
function qwen3(): Promise<ModelTokenizer> {
  tokenizer ??= loadTokenizerRegistry([{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }], { segmentCacheBytes: 64 << 20 }).then((r) => r.get("qwen3")!);
  return tokenizer;
}

/** Simulated replicas that record what they receive into `seen`. */
export class ReplicaSet {
  readonly seen = new Map<string, Seen>();
  readonly replicas: TestReplica[] = [];

  private constructor(private readonly timeScale: number) {}

  static async start(ids: readonly string[], timeScale = TEST_TIME_SCALE): Promise<ReplicaSet> {
    const set = new ReplicaSet(timeScale);
    for (const id of ids) set.replicas.push({ id, server: await set.startOne(id, "127.0.0.1:0") });
    return set;
  }

  private async startOne(id: string, listen: string): Promise<SimServer> {
    return startSimServer({
      id,
      listen,
      model: "qwen3",
      hashSeed: "0",
      tokenizer: await qwen3(),
      engine: TEST_ENGINE,
      timeScale: this.timeScale,
      limits: REPLICA_LIMITS,
      onRequest: (r) => {
        const key = r.headers[TEST_ID_HEADER];
        if (typeof key === "string") this.seen.set(key, { replica: id, headers: r.headers, bodySha256: sha256(r.body), bodyBytes: r.body.length });
      },
    });
  }

  get addresses(): string[] {
    return this.replicas.map((r) => r.server.address);
  }

  byAddress(address: string): TestReplica | undefined {
    return this.replicas.find((r) => r.server.address === address);
  }

  byId(id: string | null): TestReplica | undefined {
    return this.replicas.find((r) => r.id === id);
  }

  /** Closes a replica's port (connections refused), to be revived on the same port. */
  async kill(id: string): Promise<void> {
    await this.byId(id)!.server.close();
  }

  async revive(id: string): Promise<void> {
    const r = this.byId(id)!;
    r.server = await this.startOne(id, r.server.address);
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.server.close().catch(() => undefined)));
  }
}

export const sha256 = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

export interface StackOptions {
  readonly envoy: EnvoyBinary;
  readonly file: string;
  readonly replicas?: readonly string[];
  /** Router config overrides (testConfig's). */
  readonly router?: Record<string, unknown>;
  readonly edit?: (config: Record<string, any>) => void;
  /** Called with the started replicas before Envoy's config is rendered. */
  readonly beforeEnvoy?: (replicas: ReplicaSet) => void;
}

export interface EnvoyStack {
  readonly replicas: ReplicaSet;
  readonly router: RunningRouter;
  readonly envoy: RunningEnvoy;
  /** The router's decision spans (tracing on, in memory). */
  readonly spans: InMemorySpanExporter;
  routerConfig: RouterConfig;
  close(): Promise<void>;
}

export async function startEnvoyStack(options: StackOptions): Promise<EnvoyStack> {
  const replicas = await ReplicaSet.start(options.replicas ?? ["w1", "w2", "w3"]);
  const spans = new InMemorySpanExporter();
  let router: RunningRouter | null = null;
  try {
    const routerConfig = testConfig({
      workers: replicas.replicas.map((r) => ({ id: r.id, address: r.server.address, models: ["qwen3"] })),
      // The production decision budget, so the router answers inside Envoy's 250 ms message_timeout.
      routing: { decisionTimeoutMs: 150 },
      ...options.router,
    });
    const service = await startRouterService(routerConfig, { logger: silentLogger, traceProcessors: [new SimpleSpanProcessor(spans)] });
    const client = new EnvoyExtProcClient(service.extProc.address);
    router = { service, client, stop: async () => (client.close(), await service.close()) };
    // Warm the tokenizer and template before Envoy's timer is watching.
    await (await client.process({ path: "/v1/chat/completions", body: JSON.stringify({ model: "qwen3", messages: [{ role: "user", content: "warm up" }] }) })).complete(200);
    options.beforeEnvoy?.(replicas);
    const envoy = await startEnvoy({ envoy: options.envoy, file: options.file, routerAddress: service.extProc.address, replicas: replicas.addresses, ...(options.edit ? { edit: options.edit } : {}) });
    const stack: EnvoyStack = {
      replicas,
      router,
      envoy,
      spans,
      routerConfig,
      close: async () => {
        await envoy.stop();
        await stack.router.stop().catch(() => undefined);
        await replicas.close();
      },
    };
    return stack;
  } catch (err) {
    await router?.stop();
    await replicas.close();
    throw err;
  }
}
