/**
 * Configuration of `prefix-router sim` (a YAML file and/or flags, one schema), the per-replica
 * plan derived from it, and the router config snippet that points a router at the replicas.
 *
 * Ports: replica i listens on `port + i` (port 0: any free port); with `zmq`, replica i publishes
 * on `zmq.port + 2i` and answers replays on `zmq.port + 2i + 1`. With `ingest`, replica i pushes
 * to the router's ingest server with its own token `<ingest.token>-<id>` (the router wants one
 * token per worker); without `ingest.token` a random one is made and printed in the snippet.
 */
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { z } from "zod";
import { parseConfig } from "../config/load-config";
import { H100_LLAMA_8B, type ReplicaConfig } from "./replica-model";

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "expected host:port");
const port = z.number().int().min(0).max(65535);
const workerId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "1-64 characters of A-Z a-z 0-9 . _ -");

export const simConfigSchema = z
  .object({
    replicas: z
      .union([z.number().int().min(1).max(256), z.array(z.object({ id: workerId, port: port.optional(), totalBlocks: z.number().int().positive().optional() }).strict()).min(1)])
      .default(2)
      .describe("how many replicas, or a list of them"),
    idPrefix: z.string().regex(/^[A-Za-z0-9._-]{1,50}$/).default("sim").describe("replica ids are <idPrefix>-1, -2, …"),
    host: z.string().min(1).default("127.0.0.1"),
    port: port.default(8100).describe("HTTP port of the first replica; the others follow (0: any free port)"),
    model: z.string().min(1).describe("served model name; must be the router's canonical model name"),
    tokenizer: z.string().min(1).describe("folder with tokenizer.json and tokenizer_config.json"),
    chatTemplate: z.string().min(1).optional(),
    hashSeed: z.string().default("0").describe("the router's hashSeed"),
    blockSize: z.number().int().min(1).max(4096).default(16),
    totalBlocks: z.number().int().positive().default(27_500).describe("KV blocks per replica (H100-80GB, Llama-3.1-8B)"),
    maxBatchedTokens: z.number().int().positive().default(8192),
    maxSeqs: z.number().int().positive().default(1024),
    timeScale: z.number().positive().default(1).describe("wall ms per model ms: 0.1 runs ten times faster than the cost model"),
    ingest: z.object({ target: hostPort.describe("the router's ingest.listen"), token: z.string().min(16).optional(), flushMs: z.number().int().positive().default(100) }).strict().optional(),
    zmq: z.object({ port: port.describe("PUB port of the first replica (replay = port + 1)"), host: z.string().min(1).default("127.0.0.1"), topic: z.string().default("") }).strict().optional(),
  })
  .strict();

export type SimConfig = z.infer<typeof simConfigSchema>;

export interface ReplicaPlan {
  readonly id: string;
  readonly listen: string;
  readonly engine: ReplicaConfig;
  readonly ingestToken: string | null;
  readonly zmq: { readonly endpoint: string; readonly replayEndpoint: string } | null;
}

/** Validates a raw config; the error names every bad key. */
export function parseSimConfig(raw: unknown): SimConfig {
  const result = simConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new Error(`invalid sim config:\n${result.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`).join("\n")}`);
}

export function planReplicas(cfg: SimConfig): ReplicaPlan[] {
  const list: { id: string; port?: number; totalBlocks?: number }[] =
    typeof cfg.replicas === "number" ? Array.from({ length: cfg.replicas }, (_, i) => ({ id: `${cfg.idPrefix}-${i + 1}` })) : cfg.replicas;
  const token = cfg.ingest ? (cfg.ingest.token ?? randomBytes(12).toString("hex")) : null;
  return list.map((r, i) => {
    const p = r.port ?? (cfg.port === 0 ? 0 : cfg.port + i);
    const zmqPort = cfg.zmq ? (cfg.zmq.port === 0 ? null : cfg.zmq.port + 2 * i) : null;
    return {
      id: r.id,
      listen: `${cfg.host}:${p}`,
      engine: {
        blockSize: cfg.blockSize,
        totalBlocks: r.totalBlocks ?? cfg.totalBlocks,
        maxBatchedTokens: cfg.maxBatchedTokens,
        maxSeqs: cfg.maxSeqs,
        cost: H100_LLAMA_8B,
      },
      ingestToken: token ? `${token}-${r.id}` : null,
      zmq: cfg.zmq
        ? { endpoint: `tcp://${cfg.zmq.host}:${zmqPort ?? "*"}`, replayEndpoint: `tcp://${cfg.zmq.host}:${zmqPort === null ? "*" : zmqPort + 1}` }
        : null,
    };
  });
}

export interface RunningReplicaInfo {
  readonly id: string;
  /** host:port the replica answers on. */
  readonly address: string;
  readonly ingestToken: string | null;
  readonly kvEvents: string | null;
  readonly kvEventsReplay: string | null;
}

/** A router config (validated with the router's own schema) for these replicas. */
export function routerConfigFor(cfg: SimConfig, replicas: readonly RunningReplicaInfo[]): Record<string, unknown> {
  const snippet: Record<string, unknown> = {
    extProc: { listen: "127.0.0.1:9002" },
    // The admin port: /metrics, /debug/workers, and `prefix-router inspect` / `explain` against the router.
    admin: { listen: "127.0.0.1:9004" },
    blockSize: cfg.blockSize,
    hashSeed: cfg.hashSeed,
    models: [{ name: cfg.model, tokenizer: resolve(cfg.tokenizer), ...(cfg.chatTemplate ? { chatTemplate: resolve(cfg.chatTemplate) } : {}) }],
    workers: replicas.map((r) => ({
      id: r.id,
      address: r.address,
      models: [cfg.model],
      ...(r.ingestToken ? { ingestToken: r.ingestToken } : {}),
      ...(r.kvEvents ? { kvEvents: r.kvEvents } : {}),
      ...(r.kvEventsReplay ? { kvEventsReplay: r.kvEventsReplay } : {}),
      ...(cfg.zmq?.topic ? { kvEventsTopic: cfg.zmq.topic } : {}),
    })),
    ...(cfg.ingest ? { ingest: { listen: cfg.ingest.target } } : {}),
  };
  parseConfig(snippet, "generated router config"); // a bug if the router would refuse it
  return snippet;
}
