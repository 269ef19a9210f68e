/**
 * The simulated vLLM replicas of one router run: fresh for every run (empty caches, a fresh
 * tokenizer cache), each an HTTP server on a loopback port with the H100 cost model in scaled time.
 * Replies are scripted per prompt (the workload's next turn holds exactly what was "generated"),
 * so no request field is needed for it — routers that rebuild the body see a plain vLLM request.
 * When the router under test hears KV events, every replica pushes them to its ingest port.
 */
import { createHash } from "node:crypto";
import { H100_LLAMA_8B, type ReplicaConfig } from "../../../src/sim/replica-model";
import { startSimReplica, type SimReplica } from "../../../src/sim/sim-replica";
import { loadTokenizerRegistry } from "../../../src/tokenize/tokenizer-registry";
import type { Workload } from "../../../src/bench/workloads/workload";
import { freePort } from "../../support/free-port";

export interface SimClusterSpec {
  readonly replicas: number;
  readonly totalBlocks: number;
  /** Wall ms per model ms. */
  readonly timeScale: number;
  readonly model: string;
  readonly tokenizer: string;
}

export interface ReplicaIngest {
  readonly target: string;
  readonly token: (id: string) => string;
}

export interface SimCluster {
  readonly replicas: readonly SimReplica[];
  /** host:port of each replica, in order (the worker addresses routers are given). */
  readonly addresses: readonly string[];
  readonly ids: readonly string[];
  readonly engine: ReplicaConfig;
  close(): Promise<void>;
}

export function replicaEngine(totalBlocks: number): ReplicaConfig {
  return { blockSize: 16, totalBlocks, maxBatchedTokens: 8_192, maxSeqs: 1_024, cost: H100_LLAMA_8B };
}

/** Prompt ids → the reply the workload scripts for them (its next turn's history). */
export function replyScripts(workload: Workload): (prompt: Uint32Array) => Uint32Array | undefined {
  const byPrompt = new Map<string, Uint32Array>();
  for (const r of workload.requests) {
    const out = r.outputTokens();
    if (out) byPrompt.set(digest(r.prompt()), out);
  }
  return (prompt) => byPrompt.get(digest(prompt));
}

function digest(ids: Uint32Array): string {
  return createHash("sha1").update(Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength)).digest("base64");
}

/** Free loopback ports for the replicas, chosen before anything starts (routers need the addresses first). */
export async function replicaAddresses(count: number): Promise<string[]> {
  return Promise.all(Array.from({ length: count }, async () => `127.0.0.1:${await freePort()}`));
}

export async function startSimCluster(
  spec: SimClusterSpec,
  addresses: readonly string[],
  script: (prompt: Uint32Array) => Uint32Array | undefined,
  ingest: ReplicaIngest | null,
): Promise<SimCluster> {
  const registry = await loadTokenizerRegistry([{ name: spec.model, tokenizer: spec.tokenizer }], { segmentCacheBytes: 256 << 20 });
  const engine = replicaEngine(spec.totalBlocks);
  const ids = addresses.map((_, i) => `r${i}`);
  const replicas: SimReplica[] = [];
  try {
    for (const [i, address] of addresses.entries()) {
      replicas.push(
        await startSimReplica({
          id: ids[i],
          listen: address,
          model: spec.model,
          hashSeed: "0",
          tokenizer: registry.get(spec.model)!,
          engine,
          timeScale: spec.timeScale,
          scriptedOutput: script,
          ...(ingest ? { ingest: { target: ingest.target, token: ingest.token(ids[i]), flushMs: 100 } } : {}),
        }),
      );
    }
  } catch (err) {
    await Promise.all(replicas.map((r) => r.close()));
    throw err;
  }
  return { replicas, addresses, ids, engine, close: async () => void (await Promise.all(replicas.map((r) => r.close()))) };
}
