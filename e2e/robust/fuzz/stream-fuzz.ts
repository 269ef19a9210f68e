/**
 * Fuzzes a router's ext_proc server over real gRPC with the sequences of arbitraries.ts, many
 * streams at once. Cases come from fast-check's generators, seeded per batch, so case (seed,
 * batch, index) is reproducible; a failing batch is replayed case by case to name the culprit.
 * Per case: a well-formed sequence (headers, then the body to its end) gets its routing answer (a
 * pick — fallback allowed — or an ImmediateResponse), and every stream is closed by the server
 * after the client half-closes or resets it (none hangs). Per batch, once its streams closed:
 * every worker's in-flight count and load-ledger entry is back to zero (each stream routed at most
 * once, each count released exactly once), and the router is still alive.
 */
import { credentials, loadPackageDefinition, type ClientDuplexStream } from "@grpc/grpc-js";
import fc from "fast-check";
import { externalProcessorDefinition } from "../../../src/extproc/proto";
import type { ProcessingRequest, ProcessingResponse } from "../../../src/extproc/messages";
import { streamCase, type StreamCase } from "./arbitraries";

export interface FuzzTarget {
  readonly extProc: string;
  /** Sum of in-flight counts and of running ledger entries over the workers. */
  held(): Promise<{ inFlight: number; running: number }>;
  /** False once the router died. */
  alive(): boolean;
}

export interface StreamFuzzFigures {
  readonly cases: number;
  readonly wellFormed: number;
  readonly answered: number;
  readonly immediate: number;
  readonly seconds: number;
  readonly casesPerSecond: number;
}

export class FuzzFailure extends Error {}

type Call = ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
type RawClient = { Process(): Call; close(): void };

const ANSWER_TIMEOUT_MS = 10_000;

function isRouting(r: ProcessingResponse): boolean {
  if (r.immediate_response) return true;
  const common = r.request_headers?.response ?? r.request_body?.response;
  return !!common?.header_mutation?.set_headers?.some((h) => h.header.key === "x-gateway-destination-endpoint");
}

/** Streams played on one connection before the next (see fuzzStreams). */
const STREAMS_PER_CONNECTION = 1_000;

export function rawExtProcClient(address: string): RawClient {
  const pkg = loadPackageDefinition(externalProcessorDefinition()) as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: new (a: string, c: unknown, o: object) => RawClient } } } };
  };
  return new pkg.envoy.service.ext_proc.v3.ExternalProcessor(address, credentials.createInsecure(), { "grpc.max_send_message_length": 64 << 20, "grpc.max_receive_message_length": 64 << 20, "grpc.use_local_subchannel_pool": 1 });
}

/** Plays one case on a new stream; resolves with what the server answered, rejects on a property violation. */
export function playCase(client: RawClient, c: StreamCase): Promise<{ routed: boolean; immediate: boolean }> {
  return new Promise((resolve, reject) => {
    const call = client.Process();
    const answers: ProcessingResponse[] = [];
    let routedResolve: () => void = () => undefined;
    const routed = new Promise<void>((r) => (routedResolve = r));
    let closed = false;
    const timer = setTimeout(() => {
      call.cancel();
      reject(new FuzzFailure(closed ? "no routing answer" : `the server did not close the stream within ${ANSWER_TIMEOUT_MS} ms (answers: ${JSON.stringify(answers.map((a) => Object.keys(a)))})`));
    }, ANSWER_TIMEOUT_MS);
    call.on("data", (r: ProcessingResponse) => {
      answers.push(r);
      if (isRouting(r)) routedResolve();
    });
    let ending = "the server ended the stream";
    const done = (err?: Error) => {
      if (err) ending = `the stream failed: ${err.message}`;
      if (closed) return;
      closed = true;
      routedResolve();
      clearTimeout(timer);
      const gotRouting = answers.some(isRouting);
      if (c.wellFormed && !gotRouting) reject(new FuzzFailure(`a well-formed sequence got no routing answer (${ending}; answers: ${JSON.stringify(answers.map((a) => Object.keys(a)))})`));
      else resolve({ routed: gotRouting, immediate: answers.some((a) => a.immediate_response !== undefined) });
    };
    call.on("error", (err: Error) => done(err)); // a reset or a server-side close with a status
    call.on("end", () => done());
    call.on("status", () => undefined);
    void (async () => {
      let flushed: Promise<unknown> = Promise.resolve();
      for (const step of c.steps) {
        if (closed) return;
        if (step.kind === "pause") await new Promise((r) => setImmediate(r));
        else flushed = new Promise((r) => call.write(step.message, r));
      }
      // A grpc-js client that cancels while writes are still queued sends no reset the server sees
      // (its stream then stays open until the connection closes); Envoy's resets always arrive.
      await flushed;
      // Envoy waits for the routing answer before the exchange ends.
      if (c.wellFormed) await routed;
      if (c.end === "cancel") call.cancel();
      else call.end();
    })();
  });
}

const batchSeed = (seed: number, batch: number) => (seed * 1_000_003 + batch) | 0;

export function casesOf(seed: number, batch: number, size: number): StreamCase[] {
  return fc.sample(streamCase, { seed: batchSeed(seed, batch), numRuns: size });
}

/**
 * Runs `cases` cases in batches of `batchSize` streams at once, from batch `firstBatch` (default 0);
 * `only` replays one case alone.
 */
export async function fuzzStreams(
  target: FuzzTarget,
  o: { seed: number; cases: number; batchSize: number; firstBatch?: number; only?: { batch: number; index: number }; log?: (line: string) => void },
): Promise<StreamFuzzFigures> {
  let client = rawExtProcClient(target.extProc);
  let onThisConnection = 0;
  const t0 = performance.now();
  let wellFormed = 0;
  let answered = 0;
  let immediate = 0;
  let done = 0;
  try {
    for (let batch = o.only?.batch ?? o.firstBatch ?? 0; done < o.cases; batch++) {
      // A new connection every STREAMS_PER_CONNECTION streams: a third of the cases end in a reset,
      // far more than Envoy sends, and Node's HTTP/2 (nghttp2's rapid-reset guard: a burst of 1,000
      // resets, then 33/s) closes a connection that resets faster — every stream on it fails.
      if (onThisConnection >= STREAMS_PER_CONNECTION) {
        client.close();
        client = rawExtProcClient(target.extProc);
        onThisConnection = 0;
      }
      // A replayed case needs its whole batch generated: cases are sampled per batch.
      let cases = casesOf(o.seed, batch, o.only ? o.batchSize : Math.min(o.batchSize, o.cases - done));
      onThisConnection += cases.length;
      if (o.only) cases = [cases[o.only.index]];
      const results = await Promise.allSettled(cases.map((c) => playCase(client, c)));
      const bad = results.findIndex((r) => r.status === "rejected");
      if (bad >= 0 && o.only) throw new FuzzFailure(`case ${o.seed}:${o.only.batch}:${o.only.index}: ${((results[bad] as PromiseRejectedResult).reason as Error).message}`);
      if (bad >= 0) {
        const reason = (results[bad] as PromiseRejectedResult).reason as Error;
        throw new FuzzFailure(`case ${o.seed}:${batch}:${bad}: ${reason.message}\n  reproduce: npm run fuzz -- --seed ${o.seed} --only ${batch}:${bad}\n  case: ${describeCase(cases[bad])}`);
      }
      if (!target.alive()) throw new FuzzFailure(`the router died during batch ${o.seed}:${batch}`);
      const held = await settledHeld(target);
      if (held.inFlight !== 0 || held.running !== 0) throw new FuzzFailure(`${await culprit(client, target, o.seed, batch, cases)} (after batch ${o.seed}:${batch}: in-flight ${held.inFlight}, ledger running ${held.running})`);
      for (const [i, r] of results.entries()) {
        const value = (r as PromiseFulfilledResult<{ routed: boolean; immediate: boolean }>).value;
        if (cases[i].wellFormed) wellFormed++;
        if (value.routed) answered++;
        if (value.immediate) immediate++;
      }
      done += o.only ? o.cases : cases.length;
      if (o.log && batch % 50 === 49) o.log(`  ${done} streams, ${(done / ((performance.now() - t0) / 1000)).toFixed(0)}/s`);
    }
  } finally {
    client.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { cases: done, wellFormed, answered, immediate, seconds: Number(seconds.toFixed(1)), casesPerSecond: Math.round(done / seconds) };
}

/** Counts settle a moment after the streams closed (the server's close handlers run after the client's). */
async function settledHeld(target: FuzzTarget): Promise<{ inFlight: number; running: number }> {
  let held = await target.held();
  for (let i = 0; i < 100 && (held.inFlight !== 0 || held.running !== 0); i++) {
    await new Promise((r) => setTimeout(r, 20));
    held = await target.held();
  }
  return held;
}

/** Replays a batch one case at a time to find the first that leaves a count behind. */
async function culprit(client: RawClient, target: FuzzTarget, seed: number, batch: number, cases: readonly StreamCase[]): Promise<string> {
  const base = await settledHeld(target);
  for (const [i, c] of cases.entries()) {
    await playCase(client, c).catch(() => undefined);
    const now = await settledHeld(target);
    if (now.inFlight !== base.inFlight || now.running !== base.running) {
      return `case ${seed}:${batch}:${i} left counts behind (in-flight ${base.inFlight} → ${now.inFlight}, ledger running ${base.running} → ${now.running})\n  reproduce: npm run fuzz -- --seed ${seed} --only ${batch}:${i}\n  case: ${describeCase(c)}`;
    }
  }
  return `batch ${seed}:${batch} left counts behind, no single case does alone`;
}

export function describeCase(c: StreamCase): string {
  const text = JSON.stringify(c, (_k, v: unknown) => {
    if (v && typeof v === "object" && (v as { type?: string }).type === "Buffer") {
      const data = Buffer.from((v as { data: number[] }).data);
      return data.length > 200 ? `<${data.length} bytes: ${JSON.stringify(data.subarray(0, 120).toString("latin1"))}…>` : data.toString("latin1");
    }
    return v;
  });
  return text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
}
