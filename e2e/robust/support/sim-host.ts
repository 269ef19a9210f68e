/**
 * The simulated replicas and the ingest fault proxies of a robustness run, in their own process
 * (forked by sim-host-client.ts): their tokenizing and HTTP serving must not delay the load
 * client's event loop, whose clock measures the router's answers. Commands arrive over the IPC
 * channel as { id, cmd, args } and are answered { id, value } or { id, error }.
 */
import { H100_LLAMA_8B, type ReplicaConfig } from "../../../src/sim/replica-model";
import { startSimReplica, type SimReplica } from "../../../src/sim/sim-replica";
import { loadTokenizerRegistry, type ModelTokenizer } from "../../../src/tokenize/tokenizer-registry";
import { startIngestFaultProxy, type FaultRates, type IngestFaultProxy } from "./ingest-fault-proxy";

export interface SimHostSpec {
  readonly addresses: readonly string[];
  readonly ids: readonly string[];
  /** Router ingest addresses; replica i reports to ingestTargets[i mod n] through its own proxy. */
  readonly ingestTargets: readonly string[];
  readonly tokens: readonly string[];
  readonly model: string;
  readonly tokenizer: string;
  readonly totalBlocks: number;
  readonly timeScale: number;
  readonly seed: number;
}

export interface ReporterFigures {
  readonly batches: number;
  readonly duplicates: number;
  readonly resyncRequired: number;
  readonly resyncs: number;
  readonly failures: number;
}

export interface SimHostStats {
  readonly reporters: Record<string, ReporterFigures>;
  readonly proxies: { counts: Record<string, number>; extraReplies: Record<string, number> }[];
  /** Generation requests each replica served (since its last start). */
  readonly served: Record<string, number>;
}

export type SimHostCommand =
  | { cmd: "start"; args: SimHostSpec }
  | { cmd: "truth" }
  | { cmd: "restartReplica"; args: { index: number; downMs: number } }
  | { cmd: "flush"; args: { timeoutMs: number } }
  | { cmd: "setFaults"; args: { proxy: number; rates: FaultRates } }
  | { cmd: "resync"; args: { timeoutMs: number } }
  | { cmd: "stats" }
  | { cmd: "close" };

let spec: SimHostSpec;
let tokenizer: ModelTokenizer;
const replicas: SimReplica[] = [];
const proxies: IngestFaultProxy[] = [];
const served = new Map<string, number>();

function engine(): ReplicaConfig {
  return { blockSize: 16, totalBlocks: spec.totalBlocks, maxBatchedTokens: 8_192, maxSeqs: 256, cost: H100_LLAMA_8B };
}

function startReplica(i: number): Promise<SimReplica> {
  const id = spec.ids[i];
  served.set(id, 0);
  return startSimReplica({
    id,
    listen: spec.addresses[i],
    model: spec.model,
    hashSeed: "0",
    tokenizer,
    engine: engine(),
    timeScale: spec.timeScale,
    ingest: { target: proxies[i % proxies.length].address, token: spec.tokens[i], flushMs: 100 },
    onRequest: () => served.set(id, (served.get(id) ?? 0) + 1),
    onError: () => undefined, // the faults make reporters fail on purpose
  });
}

const figures = (r: SimReplica): ReporterFigures => {
  const s = r.reporter!.stats;
  return { batches: s.batches, duplicates: s.duplicates, resyncRequired: s.resyncRequired, resyncs: s.resyncs, failures: s.failures };
};

async function handle(c: SimHostCommand): Promise<unknown> {
  switch (c.cmd) {
    case "start": {
      spec = c.args;
      for (const [i, target] of spec.ingestTargets.entries()) proxies.push(await startIngestFaultProxy(target, spec.seed + i));
      tokenizer = (await loadTokenizerRegistry([{ name: spec.model, tokenizer: spec.tokenizer }], { segmentCacheBytes: 128 << 20 })).get(spec.model)!;
      for (let i = 0; i < spec.addresses.length; i++) replicas.push(await startReplica(i));
      return null;
    }
    case "truth":
      return Object.fromEntries(replicas.map((r) => [r.server.id, r.server.engine.cachedKeys()]));
    case "restartReplica": {
      await replicas[c.args.index].close();
      await new Promise((r) => setTimeout(r, c.args.downMs));
      replicas[c.args.index] = await startReplica(c.args.index);
      return null;
    }
    case "flush":
      return (await Promise.all(replicas.map((r) => r.reporter!.flush(c.args.timeoutMs)))).every(Boolean);
    case "setFaults":
      proxies[c.args.proxy].setFaults(c.args.rates);
      return null;
    case "resync": {
      // Every worker's next push is answered RESYNC_REQUIRED; resolves with the wall-clock time the
      // last of the resyncs completed (null when one did not within the timeout).
      const before = replicas.map((r) => r.reporter!.stats.resyncs);
      const doneAt: (number | null)[] = replicas.map(() => null);
      proxies.forEach((p, k) => p.demandResync(spec.ids.filter((_, i) => i % proxies.length === k)));
      const deadline = Date.now() + c.args.timeoutMs;
      while (doneAt.some((d) => d === null) && Date.now() < deadline) {
        replicas.forEach((r, i) => {
          if (doneAt[i] === null && r.reporter!.stats.resyncs > before[i]) doneAt[i] = Date.now();
        });
        await new Promise((r) => setTimeout(r, 5));
      }
      return doneAt.some((d) => d === null) ? null : Math.max(...(doneAt as number[]));
    }
    case "stats": {
      const stats: SimHostStats = {
        reporters: Object.fromEntries(replicas.map((r) => [r.server.id, figures(r)])),
        proxies: proxies.map((p) => ({ counts: { ...p.counts }, extraReplies: { ...p.extraReplies } })),
        served: Object.fromEntries(served),
      };
      return stats;
    }
    case "close":
      await Promise.all(replicas.map((r) => r.close().catch(() => undefined)));
      await Promise.all(proxies.map((p) => p.close()));
      setImmediate(() => process.exit(0));
      return null;
  }
}

process.on("message", (m: { id: number } & SimHostCommand) => {
  handle(m).then(
    (value) => process.send!({ id: m.id, value }),
    (err: unknown) => process.send!({ id: m.id, error: String((err as Error)?.stack ?? err) }),
  );
});
process.on("disconnect", () => process.exit(0));
