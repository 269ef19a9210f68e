/**
 * A gRPC proxy in front of the router's ingest server that loses, duplicates, reorders and replays
 * KV-event batches on purpose — the faults a network, a buggy sidecar or a retrying client can
 * cause — so a test can check that the map still converges to what the workers hold. It forwards
 * the callers' bytes and metadata untouched; it decodes a batch only to know its worker and seq.
 *
 * Per Push that carries events (heartbeats always pass), one fault is drawn with the configured
 * probabilities (seeded):
 *   lose       answer APPLIED without forwarding (the router sees a gap at the next batch)
 *   duplicate  forward twice in a row (the second must be DUPLICATE)
 *   reorder    answer APPLIED, hold the batch, forward it right after the worker's next batch
 *              (or after 500 ms when none comes)
 *   replay     forward, then re-send a batch of the worker's from up to 8 batches back (a stale
 *              retry: it must not be applied again)
 * Resync streams always pass through. demandResync() answers each worker's next Push (a heartbeat
 * when idle) with RESYNC_REQUIRED itself, so a test can time a resync it asked for.
 */
import { credentials, Server, ServerCredentials, type Client, type Metadata, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { makeGenericClientConstructor, type ServiceDefinition } from "@grpc/grpc-js";
import { kvIngestService } from "../../../src/ingest/ingest-proto";
import { seededRandom } from "../../../src/common/seeded-random";

export type BatchFault = "lose" | "duplicate" | "reorder" | "replay";
export type FaultRates = Partial<Record<BatchFault, number>>;

export interface IngestFaultProxy {
  /** host:port the workers push to. */
  readonly address: string;
  /** How many batches each fault hit, and how many passed clean. */
  readonly counts: Record<BatchFault | "passed" | "heartbeats" | "resyncs" | "upstreamErrors", number>;
  /** Replies the router gave to the extra sends (duplicates, late reordered, replays), by status. */
  readonly extraReplies: Record<string, number>;
  setFaults(rates: FaultRates): void;
  /** The next Push of each of these workers is answered RESYNC_REQUIRED by the proxy. */
  demandResync(workers: readonly string[]): void;
  close(): Promise<void>;
}

const HOLD_MS = 500;
const REPLAY_DEPTH = 8;
const identity = (b: Buffer) => b;

interface Held {
  readonly bytes: Buffer;
  readonly metadata: Metadata;
  readonly timer: NodeJS.Timeout;
}

export async function startIngestFaultProxy(target: string, seed = 1): Promise<IngestFaultProxy> {
  const typed = kvIngestService();
  const decodeBatch = typed.Push.requestDeserialize as (b: Buffer) => { worker_id: string; seq: string; events: unknown[] };
  const decodeReply = typed.Push.responseDeserialize as (b: Buffer) => { status: string };
  // The same methods, on raw bytes.
  const raw: ServiceDefinition = Object.fromEntries(
    Object.entries(typed).map(([name, m]) => [name, { ...m, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity }]),
  );
  const Upstream = makeGenericClientConstructor(raw, "KvIngestRaw");
  // Reconnect quickly after a router restart (the default backoff grows to minutes).
  const upstream = new Upstream(target, credentials.createInsecure(), { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500 }) as Client;
  const random = seededRandom(seed);
  let rates: FaultRates = {};
  const counts: IngestFaultProxy["counts"] = { lose: 0, duplicate: 0, reorder: 0, replay: 0, passed: 0, heartbeats: 0, resyncs: 0, upstreamErrors: 0 };
  const extraReplies: Record<string, number> = {};
  const held = new Map<string, Held>();
  const history = new Map<string, { bytes: Buffer; metadata: Metadata }[]>();

  const forward = (bytes: Buffer, metadata: Metadata): Promise<{ err: ServiceError | null; reply?: Buffer }> =>
    new Promise((resolve) =>
      upstream.makeUnaryRequest<Buffer, Buffer>(raw.Push.path, identity, identity, bytes, metadata, { deadline: Date.now() + 5_000 }, (err, reply) => {
        if (err) counts.upstreamErrors++;
        resolve({ err, reply });
      }),
    );
  const extra = async (bytes: Buffer, metadata: Metadata) => {
    const { err, reply } = await forward(bytes, metadata);
    const label = err ? `error ${err.code}` : decodeReply(reply!).status;
    extraReplies[label] = (extraReplies[label] ?? 0) + 1;
  };
  const release = (worker: string) => {
    const h = held.get(worker);
    if (!h) return;
    held.delete(worker);
    clearTimeout(h.timer);
    void extra(h.bytes, h.metadata);
  };
  const draw = (): BatchFault | null => {
    let x = random();
    for (const fault of ["lose", "duplicate", "reorder", "replay"] as const) {
      x -= rates[fault] ?? 0;
      if (x < 0) return fault;
    }
    return null;
  };
  const fakeApplied = Buffer.alloc(0); // PushReply{status: APPLIED (0), applied_seq: 0}: all defaults
  const fakeResync = (typed.Push.responseSerialize as (r: object) => Buffer)({ status: "RESYNC_REQUIRED", applied_seq: "0", message: "asked by the test proxy" });
  const resyncDemanded = new Set<string>();

  const server = new Server();
  server.addService(raw, {
    Push: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      const bytes = call.request;
      let batch: { worker_id: string; seq: string; events: unknown[] } | null = null;
      try {
        batch = decodeBatch(bytes);
      } catch {
        // not ours to judge: the router answers it
      }
      const worker = batch?.worker_id ?? "";
      if (resyncDemanded.delete(worker)) return callback(null, fakeResync);
      const answer = async (fault: BatchFault | null) => {
        if (fault === "lose") return callback(null, fakeApplied);
        if (fault === "reorder") {
          release(worker);
          held.set(worker, { bytes, metadata: call.metadata, timer: setTimeout(() => release(worker), HOLD_MS) });
          return callback(null, fakeApplied);
        }
        const { err, reply } = await forward(bytes, call.metadata);
        release(worker); // a held batch goes right after the one that overtook it
        if (!err && fault === "duplicate") await extra(bytes, call.metadata);
        if (!err && fault === "replay") {
          const past = history.get(worker) ?? [];
          if (past.length > 0) {
            const old = past[Math.floor(random() * past.length)];
            await extra(old.bytes, old.metadata);
          }
        }
        if (!err && batch && batch.events.length > 0) {
          const past = history.get(worker) ?? [];
          past.push({ bytes, metadata: call.metadata });
          if (past.length > REPLAY_DEPTH) past.shift();
          history.set(worker, past);
        }
        if (err) callback(err);
        else callback(null, reply!);
      };
      if (!batch || batch.events.length === 0) {
        counts.heartbeats++;
        void answer(null);
        return;
      }
      const fault = draw();
      counts[fault ?? "passed"]++;
      void answer(fault);
    },
    Resync: (call: ServerReadableStream<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      counts.resyncs++;
      const up = upstream.makeClientStreamRequest<Buffer, Buffer>(raw.Resync.path, identity, identity, call.metadata, { deadline: Date.now() + 10_000 }, (err, reply) => {
        if (err) {
          counts.upstreamErrors++;
          callback(err);
        } else callback(null, reply!);
      });
      call.on("data", (page: Buffer) => up.write(page));
      call.on("end", () => up.end());
      call.on("error", () => up.cancel());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    counts,
    extraReplies,
    setFaults: (r) => {
      rates = { ...r };
    },
    demandResync: (workers) => {
      for (const w of workers) resyncDemanded.add(w);
    },
    close: async () => {
      for (const h of held.values()) clearTimeout(h.timer);
      held.clear();
      upstream.close();
      server.forceShutdown();
    },
  };
}
