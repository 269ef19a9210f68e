/**
 * The fuzz run: first the bulk, in process without gRPC (parser-fuzz.ts: the body parser and the
 * ingest batch validator), then ext_proc sequences and bodies, and ingest batches, over real gRPC
 * against
 *   (1) a router service in this process (real gRPC on loopback; the bulk of the cases: no process
 *       hop to pay for), and
 *   (2) a router process (`prefix-router serve`, run with --expose-gc): a sample of the same
 *       kinds of cases, with its death watched and its memory read before and after
 *       (GET /debug/heap: heap after GC, RSS).
 * Zero crashes, every property of stream-fuzz.ts and ingest-fuzz.ts, and bounded memory.
 */
import { freePort } from "../../support/free-port";
import { QWEN3_TOKENIZER, startTestRouter, testConfig } from "../../support/router-fixture";
import { machine, type RunHeader } from "../support/figures";
import { scrapeAdmin, startRouterChild } from "../support/router-child";
import { fuzzIngest, type IngestFuzzFigures } from "./ingest-fuzz";
import { fuzzParsers, type ParserFuzzFigures } from "./parser-fuzz";
import { fuzzStreams, type StreamFuzzFigures } from "./stream-fuzz";

export interface FuzzOptions {
  readonly seed: number;
  readonly parserCases: number;
  readonly validatorCases: number;
  readonly inProcessCases: number;
  readonly processCases: number;
  readonly ingestCases: number;
  readonly batchSize: number;
  readonly log: (line: string) => void;
}

export interface FuzzReport extends RunHeader<Omit<FuzzOptions, "log">> {
  readonly totalCases: number;
  readonly parsers: ParserFuzzFigures;
  readonly inProcess: { streams: StreamFuzzFigures; ingest: IngestFuzzFigures };
  readonly process: { streams: StreamFuzzFigures; ingest: IngestFuzzFigures; memory: { before: HeapFigures; after: HeapFigures } };
}

export interface HeapFigures {
  readonly heapAfterGcMiB: number;
  readonly rssMiB: number;
}

/** Case counts for a total of about `total` cases, split as the make test run splits its 100k. */
export function fuzzPlan(total: number): Omit<FuzzOptions, "seed" | "log"> {
  const share = (x: number) => Math.max(1, Math.round((total * x) / 100_000));
  return { parserCases: share(50_000), validatorCases: share(44_000), inProcessCases: share(3_000), ingestCases: share(1_600), processCases: share(1_000), batchSize: 32 };
}

const WORKERS = ["w1", "w2", "w3", "w4"];
const token = (w: string) => `fuzz-ingest-token-${w}-0123456789`;
const MiB = 1024 * 1024;

async function heap(adminUrl: string): Promise<HeapFigures> {
  const h = JSON.parse(await scrapeAdmin(adminUrl, "/debug/heap")) as { totalHeapUsedAfterGc: number; rss: number };
  return { heapAfterGcMiB: Number((h.totalHeapUsedAfterGc / MiB).toFixed(1)), rssMiB: Number((h.rss / MiB).toFixed(1)) };
}

export async function runFuzz(o: FuzzOptions, command: string): Promise<FuzzReport> {
  // Ledger entries retire at their predicted end too: far away, so only the stream's end retires them.
  const routing = { decisionTimeoutMs: 150, load: { scrapeMetrics: false, expectedOutputTokens: 10_000_000 } };
  const base = testConfig();
  const workers = base.workers.map((w) => ({ id: w.id, address: w.address, models: ["qwen3"], ingestToken: token(w.id) }));

  o.log(`parsers: ${o.parserCases} bodies, ${o.validatorCases} ingest batches to the validator`);
  const parsers = fuzzParsers(o.seed, o.parserCases, o.validatorCases);
  o.log(`  ${JSON.stringify(parsers)}`);
  o.log(`in process: ${o.inProcessCases} ext_proc streams, ${o.ingestCases} ingest batches`);
  const local = await startTestRouter(testConfig({ routing, workers, ingest: { listen: "127.0.0.1:0", livenessTimeoutMs: 600_000 } }));
  let inProcess: FuzzReport["inProcess"];
  try {
    const held = async () => {
      const loads = [...local.service.router.loads().values()];
      return { inFlight: WORKERS.reduce((n, w) => n + local.service.router.inFlight.inFlight(w), 0), running: loads.reduce((n, l) => n + l.running, 0) };
    };
    const streams = await fuzzStreams({ extProc: local.service.extProc.address, held, alive: () => true }, { seed: o.seed, cases: o.inProcessCases, batchSize: o.batchSize, log: o.log });
    o.log(`  ${JSON.stringify(streams)}`);
    const ingest = await fuzzIngest({ ingest: local.service.ingest!.server.address, workers: WORKERS, tokenOf: token, model: "qwen3", blockSize: 16, alive: () => true }, { seed: o.seed, cases: o.ingestCases, batchSize: o.batchSize });
    o.log(`  ${JSON.stringify(ingest)}`);
    inProcess = { streams, ingest };
  } finally {
    await local.stop();
  }

  o.log(`router process: ${o.processCases} ext_proc streams, ${Math.ceil(o.ingestCases / 4)} ingest batches`);
  const [extProc, ingestPort, admin] = [await freePort(), await freePort(), await freePort()];
  const child = await startRouterChild({
    name: "fuzz",
    exposeGc: true,
    config: {
      extProc: { listen: `127.0.0.1:${extProc}` },
      ingest: { listen: `127.0.0.1:${ingestPort}`, livenessTimeoutMs: 600_000 },
      admin: { listen: `127.0.0.1:${admin}` },
      models: [{ name: "qwen3", tokenizer: QWEN3_TOKENIZER }],
      workers,
      routing,
      log: { level: "warn" },
    },
  });
  try {
    const alive = () => {
      try {
        process.kill(child.pid(), 0);
        return true;
      } catch {
        return false;
      }
    };
    const held = async () => {
      const w = JSON.parse(await scrapeAdmin(child.adminUrl, "/debug/workers")) as { workers: { inFlight: number; load: { running: number } | null }[] };
      return { inFlight: w.workers.reduce((n, x) => n + x.inFlight, 0), running: w.workers.reduce((n, x) => n + (x.load?.running ?? 0), 0) };
    };
    const before = await heap(child.adminUrl);
    // Another seed than the in-process part: new cases.
    const streams = await fuzzStreams({ extProc: `127.0.0.1:${extProc}`, held, alive }, { seed: o.seed + 1, cases: o.processCases, batchSize: o.batchSize, log: o.log });
    o.log(`  ${JSON.stringify(streams)}`);
    const ingest = await fuzzIngest({ ingest: `127.0.0.1:${ingestPort}`, workers: WORKERS, tokenOf: token, model: "qwen3", blockSize: 16, alive }, { seed: o.seed + 1, cases: Math.ceil(o.ingestCases / 4), batchSize: o.batchSize });
    o.log(`  ${JSON.stringify(ingest)}`);
    const after = await heap(child.adminUrl);
    o.log(`  memory: heap after GC ${before.heapAfterGcMiB} → ${after.heapAfterGcMiB} MiB, RSS ${before.rssMiB} → ${after.rssMiB} MiB`);
    const { log: _log, ...options } = o;
    return {
      command,
      machine: machine(),
      options,
      parsers,
      totalCases: parsers.bodies + parsers.batches + inProcess.streams.cases + inProcess.ingest.cases + streams.cases + ingest.cases,
      inProcess,
      process: { streams, ingest, memory: { before, after } },
    };
  } finally {
    await child.stop();
  }
}
