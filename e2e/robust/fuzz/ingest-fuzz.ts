/**
 * Fuzzes a router's ingest server over real gRPC: Push calls whose bytes are valid batches with
 * odd fields, valid batches with bytes flipped, cut or inserted, or random bytes, under a right,
 * wrong, foreign or missing token. Property per call: it completes (a reply or a gRPC status)
 * within 10 s, and a batch that is plainly malformed — not decodable, an unconfigured worker or
 * model, a token that is not the worker's, a block size other than the router's, keys or a parent
 * that are not whole 8-byte keys, an epoch outside 1-128 characters — is refused with a status,
 * never answered OK. Cases are seeded per batch (case seed:batch:index is reproducible).
 */
import { credentials, makeGenericClientConstructor, Metadata, status, type Client, type ServiceDefinition, type ServiceError } from "@grpc/grpc-js";
import fc from "fast-check";
import { kvIngestService } from "../../../src/ingest/ingest-proto";
import { FuzzFailure } from "./stream-fuzz";

export interface IngestFuzzTarget {
  readonly ingest: string;
  readonly workers: readonly string[];
  readonly tokenOf: (worker: string) => string;
  readonly model: string;
  readonly blockSize: number;
  alive(): boolean;
}

export interface IngestFuzzFigures {
  readonly cases: number;
  readonly ok: number;
  readonly refused: Record<string, number>;
  readonly seconds: number;
}

interface WireEvent {
  stored?: { keys: Buffer; parent: Buffer };
  removed?: { keys: Buffer };
  cleared?: Record<string, never>;
}
interface Batch {
  worker_id: string;
  model: string;
  lora: string;
  epoch: string;
  seq: string;
  block_size: number;
  events: WireEvent[];
  sent_at_ms: string;
}
interface IngestCase {
  readonly batch: Batch;
  /** Bytes on the wire: the batch encoded, maybe mutated, or random. */
  readonly mutation: { readonly kind: "none" } | { readonly kind: "edit"; readonly edits: [number, number][] } | { readonly kind: "random"; readonly bytes: Uint8Array };
  readonly auth: "own" | "foreign" | "garbage" | "none";
}

function caseArbitrary(t: IngestFuzzTarget): fc.Arbitrary<IngestCase> {
  const keys = fc.oneof({ weight: 5, arbitrary: fc.nat({ max: 64 }).map((n) => n * 8) }, { weight: 1, arbitrary: fc.nat({ max: 100 }) }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
  const event: fc.Arbitrary<WireEvent> = fc.oneof(
    fc.record({ stored: fc.record({ keys: keys.map((b) => Buffer.from(b)), parent: fc.oneof(fc.constant(0), fc.constant(8), fc.nat({ max: 16 })).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map((b) => Buffer.from(b)) }) }),
    fc.record({ removed: fc.record({ keys: keys.map((b) => Buffer.from(b)) }) }),
    fc.constant({ cleared: {} }),
    fc.constant({}),
  );
  const batch = fc.record({
    worker_id: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...t.workers) }, { weight: 1, arbitrary: fc.string({ maxLength: 80 }) }),
    model: fc.oneof({ weight: 6, arbitrary: fc.constant(t.model) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }),
    lora: fc.oneof(fc.constant(""), fc.string({ maxLength: 20 })),
    epoch: fc.oneof({ weight: 6, arbitrary: fc.constantFrom("e1", "e2") }, { weight: 1, arbitrary: fc.string({ maxLength: 200 }) }),
    seq: fc.oneof(fc.integer({ min: 0, max: 50 }).map(String), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String)),
    block_size: fc.oneof({ weight: 6, arbitrary: fc.constant(t.blockSize) }, { weight: 1, arbitrary: fc.nat() }),
    events: fc.array(event, { maxLength: 6 }),
    sent_at_ms: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String),
  });
  const mutation = fc.oneof(
    { weight: 6, arbitrary: fc.constant({ kind: "none" as const }) },
    { weight: 3, arbitrary: fc.array(fc.tuple(fc.nat(), fc.integer({ min: -1, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => ({ kind: "edit" as const, edits })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((bytes) => ({ kind: "random" as const, bytes })) },
  );
  return fc.record({ batch, mutation, auth: fc.constantFrom<IngestCase["auth"]>("own", "own", "own", "foreign", "garbage", "none") });
}

const identity = (b: Buffer) => b;

/** The wire bytes of a case: edits flip a byte (value ≥ 0) or cut the message there (-1). */
function wireBytes(c: IngestCase): Buffer {
  const encoded = (kvIngestService().Push.requestSerialize as (m: object) => Buffer)(c.batch);
  if (c.mutation.kind === "none") return encoded;
  if (c.mutation.kind === "random") return Buffer.from(c.mutation.bytes);
  let b = Buffer.from(encoded);
  for (const [at, value] of c.mutation.edits) {
    if (b.length === 0) break;
    if (value < 0) b = b.subarray(0, at % b.length);
    else b[at % b.length] = value;
  }
  return b;
}

/** Why the router must refuse these bytes, or null when they may be accepted. */
function mustRefuse(bytes: Buffer, c: IngestCase, t: IngestFuzzTarget): string | null {
  let m: Batch;
  try {
    m = (kvIngestService().Push.requestDeserialize as (b: Buffer) => Batch)(bytes);
  } catch {
    return "not decodable";
  }
  if (!t.workers.includes(m.worker_id)) return "unconfigured worker";
  if (c.auth !== "own" || m.worker_id !== c.batch.worker_id) return "the token is not the worker's";
  if (m.model !== t.model) return "unserved model";
  if (m.epoch.length === 0 || m.epoch.length > 128) return "epoch length";
  if (m.block_size !== t.blockSize) return "block size";
  for (const e of m.events ?? []) {
    const k = e.stored?.keys ?? e.removed?.keys;
    if (k && k.length % 8 !== 0) return "keys not whole";
    if (e.stored?.parent && e.stored.parent.length !== 0 && e.stored.parent.length !== 8) return "parent size";
  }
  return null;
}

export async function fuzzIngest(t: IngestFuzzTarget, o: { seed: number; cases: number; batchSize: number }): Promise<IngestFuzzFigures> {
  const raw: ServiceDefinition = Object.fromEntries(Object.entries(kvIngestService()).map(([n, m]) => [n, { ...m, requestSerialize: identity, responseDeserialize: identity }]));
  const client = new (makeGenericClientConstructor(raw, "KvIngestFuzz"))(t.ingest, credentials.createInsecure()) as Client;
  const arbitrary = caseArbitrary(t);
  const refused: Record<string, number> = {};
  let ok = 0;
  let done = 0;
  const t0 = performance.now();
  const call = (bytes: Buffer, c: IngestCase): Promise<ServiceError | null> => {
    const md = new Metadata();
    const other = t.workers.find((w) => w !== c.batch.worker_id) ?? t.workers[0];
    if (c.auth === "own") md.set("authorization", `Bearer ${t.tokenOf(c.batch.worker_id)}`);
    if (c.auth === "foreign") md.set("authorization", `Bearer ${t.tokenOf(other)}`);
    if (c.auth === "garbage") md.set("authorization", "Bearer not-a-token");
    return new Promise((resolve) => client.makeUnaryRequest(raw.Push.path, identity, identity, bytes, md, { deadline: Date.now() + 10_000 }, (err) => resolve(err)));
  };
  try {
    for (let batch = 0; done < o.cases; batch++) {
      const cases = fc.sample(arbitrary, { seed: (o.seed * 1_000_003 + batch) | 0, numRuns: Math.min(o.batchSize, o.cases - done) });
      const outcomes = await Promise.all(cases.map(async (c) => ({ c, bytes: wireBytes(c) })).map(async (p) => {
        const { c, bytes } = await p;
        return { c, bytes, err: await call(bytes, c) };
      }));
      for (const [i, { c, bytes, err }] of outcomes.entries()) {
        if (err?.code === status.DEADLINE_EXCEEDED) throw new FuzzFailure(`ingest case ${o.seed}:${batch}:${i}: no answer within 10 s`);
        const reason = mustRefuse(bytes, c, t);
        if (!err && reason) throw new FuzzFailure(`ingest case ${o.seed}:${batch}:${i} was answered OK though it must be refused (${reason}): ${JSON.stringify(c).slice(0, 2000)}`);
        if (err) refused[status[err.code]] = (refused[status[err.code]] ?? 0) + 1;
        else ok++;
      }
      if (!t.alive()) throw new FuzzFailure(`the router died during ingest batch ${o.seed}:${batch}`);
      done += cases.length;
    }
  } finally {
    client.close();
  }
  return { cases: done, ok, refused, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)) };
}
