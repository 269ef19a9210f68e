/** A test client of the ingest API (what the vllm-patch plugin speaks), over real gRPC. */
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { encodeKeys } from "../../src/ingest/ingest-batch";
import { kvIngestClient } from "../../src/ingest/ingest-proto";

export type TestEvent = { stored: string[]; parent?: string } | { removed: string[] } | { cleared: true };

export interface PushArgs {
  worker: string;
  model?: string;
  epoch?: string;
  seq: number;
  blockSize?: number;
  events?: TestEvent[];
  token?: string | null;
}

export interface PushReply {
  status: "APPLIED" | "DUPLICATE" | "RESYNC_REQUIRED";
  applied_seq: string;
  message: string;
}

type Callback<T> = (err: ServiceError | null, value?: T) => void;
interface RawIngestClient {
  Push(req: object, md: Metadata, cb: Callback<PushReply>): void;
  Resync(md: Metadata, cb: Callback<{ keys: string; applied_seq: string }>): { write(page: object): void; end(): void };
  close(): void;
}

export class IngestTestClient {
  private readonly raw: RawIngestClient;

  constructor(address: string) {
    const KvIngest = kvIngestClient();
    this.raw = new KvIngest(address, credentials.createInsecure()) as unknown as RawIngestClient;
  }

  close(): void {
    this.raw.close();
  }

  push(a: PushArgs): Promise<PushReply> {
    const events = (a.events ?? []).map((e) =>
      "stored" in e
        ? { stored: { keys: encodeKeys(e.stored), parent: e.parent ? Buffer.from(e.parent, "hex") : Buffer.alloc(0) } }
        : "removed" in e
          ? { removed: { keys: encodeKeys(e.removed) } }
          : { cleared: {} },
    );
    const req = { worker_id: a.worker, model: a.model ?? "qwen3", epoch: a.epoch ?? "e1", seq: String(a.seq), block_size: a.blockSize ?? 16, events, sent_at_ms: String(Date.now()) };
    return new Promise((resolve, reject) => this.raw.Push(req, metadata(a.token === undefined ? tokenFor(a.worker) : a.token), (err, r) => (err ? reject(err) : resolve(r!))));
  }

  openResync(a: { worker: string; epoch?: string; seq: number; keys: string[] }): OpenResync {
    let call!: { write(page: object): void; end(): void };
    const answer = new Promise<{ keys: string; applied_seq: string }>((resolve, reject) => {
      call = this.raw.Resync(metadata(tokenFor(a.worker)), (err, r) => (err ? reject(err) : resolve(r!)));
    });
    answer.catch(() => undefined); // read by whoever awaits it
    const page = (keys: string[], last: boolean) => ({ worker_id: a.worker, model: "qwen3", epoch: a.epoch ?? "e1", seq: String(a.seq), block_size: 16, keys: encodeKeys(keys), last });
    call.write(page(a.keys, false));
    return {
      answer,
      finish: (keys = []) => {
        call.write(page(keys, true));
        call.end();
        return answer;
      },
    };
  }

  resync(a: { worker: string; epoch?: string; seq: number; keys: string[]; pageSize?: number; token?: string | null; skipLast?: boolean }): Promise<{ keys: string; applied_seq: string }> {
    return new Promise((resolve, reject) => {
      const call = this.raw.Resync(metadata(a.token === undefined ? tokenFor(a.worker) : a.token), (err, r) => (err ? reject(err) : resolve(r!)));
      const size = a.pageSize ?? 1000;
      const pages = Math.max(1, Math.ceil(a.keys.length / size));
      for (let p = 0; p < pages; p++) {
        call.write({
          worker_id: a.worker,
          model: "qwen3",
          epoch: a.epoch ?? "e1",
          seq: String(a.seq),
          block_size: 16,
          keys: encodeKeys(a.keys.slice(p * size, (p + 1) * size)),
          last: !a.skipLast && p === pages - 1,
        });
      }
      call.end();
    });
  }
}

/** A resync left open after its first page: finish() sends the last page and waits for the answer. */
export interface OpenResync {
  finish(keys?: string[]): Promise<{ keys: string; applied_seq: string }>;
  /** The server's answer, should it come before finish() (e.g. a refusal). */
  readonly answer: Promise<{ keys: string; applied_seq: string }>;
}

/** Tests give worker wN the token "token-for-wN-0123456789". */
export function tokenFor(worker: string): string {
  return `token-for-${worker}-0123456789`;
}

/** Workers as configured, each with its ingest token (tokenFor): the config of workers that report KV events. */
export function withIngestTokens(workers: readonly { readonly id: string; readonly address: string; readonly models: readonly string[] }[]) {
  return workers.map((w) => ({ id: w.id, address: w.address, models: w.models, ingestToken: tokenFor(w.id) }));
}

function metadata(token: string | null): Metadata {
  const md = new Metadata();
  if (token !== null) md.set("authorization", `Bearer ${token}`);
  return md;
}
