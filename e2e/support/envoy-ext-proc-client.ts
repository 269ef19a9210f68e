/**
 * A gRPC client that talks to an ext_proc server the way Envoy does, message for message:
 *
 * BUFFERED:              request_headers → (wait) → request_body(whole, eos) → (wait)
 * FULL_DUPLEX_STREAMED:  request_headers, body chunks…(last eos) sent without waiting; then read the
 *                        HeadersResponse and the streamed_response chunks until end_of_stream.
 * Then (optionally) response_headers → (wait), and a half-close when the HTTP exchange completes.
 *
 * It applies header mutations with Envoy's rules: removals before sets, values only from raw_value
 * (a `value`-only mutation sets an empty header, both set fails the request with 500), and
 * :authority/host/:method/:scheme/x-envoy-* cannot be set.
 */
import { credentials, loadPackageDefinition, type ClientDuplexStream } from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { externalProcessorDefinition } from "../../src/extproc/proto";
import type { BodySendMode, HeaderMutation, ImmediateResponse, ProcessingRequest, ProcessingResponse, Struct } from "../../src/extproc/messages";

export interface EnvoyRequest {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** undefined → a request without body (headers carry end_of_stream). */
  readonly body?: Buffer | string;
  readonly mode?: "buffered" | "full-duplex-streamed";
  /** Body chunk size for full-duplex mode (Envoy forwards what it receives; default 16 KiB). */
  readonly chunkBytes?: number;
  /** Send protocol_config on the first message, as Envoy >= 1.34 does (default true). */
  readonly announceMode?: boolean;
  /** Gateway API Inference Extension subset hint. */
  readonly subset?: readonly string[];
  /** Per-message timeout, like Envoy's message_timeout (default 5 s for tests). */
  readonly messageTimeoutMs?: number;
}

export interface ExchangeResult {
  /** Request headers after the mutations, as Envoy would send them upstream. */
  readonly upstreamHeaders: Map<string, string>;
  readonly dynamicMetadata: Struct | undefined;
  readonly clearRouteCache: boolean;
  readonly immediateResponse: ImmediateResponse | undefined;
  /** The body Envoy forwards upstream (the echoed stream in full-duplex mode). */
  readonly upstreamBody: Buffer;
  readonly streamedChunkSizes: readonly number[];
  readonly responses: readonly ProcessingResponse[];
  /** Envoy's verdict when the server broke the protocol (e.g. both value and raw_value set). */
  readonly protocolError: string | null;
}

export interface Exchange extends ExchangeResult {
  /** Ends the HTTP exchange: optional response headers, then half-close. Releases the router's load. */
  complete(responseStatus?: number): Promise<void>;
  /** Resets the stream, as Envoy does when the client goes away. */
  cancel(): void;
}

export interface RawStream {
  write(msg: ProcessingRequest): void;
  next(): Promise<ProcessingResponse>;
  /** Half-close, as Envoy does when the HTTP exchange completes. */
  end(): void;
  cancel(): void;
  /** Resolves when the server ended the stream (or it failed). */
  closed(): Promise<void>;
}

const FORBIDDEN = (key: string) => [":authority", "host", ":method", ":scheme"].includes(key) || key.startsWith("x-envoy-");

/** proto-loader hands enums over as names; Envoy reads the number. */
function statusCodeNumber(def: PackageDefinition, code: unknown): number {
  if (typeof code === "number") return code;
  const values = (def["envoy.type.v3.StatusCode"] as unknown as { type: { value: { name: string; number: number }[] } }).type.value;
  return values.find((v) => v.name === code)?.number ?? Number(code);
}

type RawClient = { Process(): ClientDuplexStream<ProcessingRequest, ProcessingResponse>; close(): void };

export class EnvoyExtProcClient {
  private readonly client: RawClient;
  private readonly def: PackageDefinition;

  /** `channelOptions` are merged over the defaults (e.g. a short reconnect backoff for restart tests). */
  constructor(address: string, channelOptions: Record<string, string | number> = {}) {
    // The router's own loaded definition: the same protos and options the server decodes with.
    const def = externalProcessorDefinition();
    this.def = def;
    const pkg = loadPackageDefinition(def) as unknown as {
      envoy: { service: { ext_proc: { v3: { ExternalProcessor: new (addr: string, creds: unknown, opts: object) => RawClient } } } };
    };
    const Ctor = pkg.envoy.service.ext_proc.v3.ExternalProcessor;
    this.client = new Ctor(address, credentials.createInsecure(), {
      "grpc.max_send_message_length": 256 * 1024 * 1024,
      "grpc.max_receive_message_length": 256 * 1024 * 1024,
      ...channelOptions,
    });
  }

  close(): void {
    this.client.close();
  }

  /**
   * A bare stream for message sequences Envoy should never send (a proxy bug): the caller writes
   * what it likes and reads the answers one at a time.
   */
  raw(timeoutMs = 5000): RawStream {
    const call = this.client.Process();
    const inbox = new Inbox(call, timeoutMs);
    return {
      write: (msg) => void call.write(msg),
      next: () => inbox.next(),
      end: () => call.end(),
      cancel: () => call.cancel(),
      closed: () => inbox.closed(),
    };
  }

  /** Runs the request half of the exchange and returns with the stream still open. */
  async process(req: EnvoyRequest): Promise<Exchange> {
    const call = this.client.Process();
    // A message without an answer in time (or a failed stream): reset it, as Envoy does, and throw.
    try {
      return await this.exchange(call, req);
    } catch (err) {
      call.cancel();
      throw err;
    }
  }

  private async exchange(call: ClientDuplexStream<ProcessingRequest, ProcessingResponse>, req: EnvoyRequest): Promise<Exchange> {
    const inbox = new Inbox(call, req.messageTimeoutMs ?? 5000);
    const mode = req.mode ?? "buffered";
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, "utf8");
    const headers: Record<string, string> = {
      ":method": req.method ?? (body ? "POST" : "GET"),
      ":path": req.path,
      ":authority": "router.test",
      ":scheme": "http",
      ...(body ? { "content-type": "application/json", "content-length": String(body.length) } : {}),
      ...req.headers,
    };
    const first: ProcessingRequest = {
      request_headers: {
        headers: { headers: Object.entries(headers).map(([key, v]) => ({ key, raw_value: Buffer.from(v, "latin1") })) },
        end_of_stream: body === undefined,
      },
    };
    if (req.announceMode ?? true) {
      const requestMode: BodySendMode = mode === "buffered" ? "BUFFERED" : "FULL_DUPLEX_STREAMED";
      first.protocol_config = { request_body_mode: requestMode, response_body_mode: "NONE" };
    }
    if (req.subset) {
      first.metadata_context = {
        filter_metadata: {
          "envoy.lb.subset_hint": { fields: { "x-gateway-destination-endpoint-subset": { listValue: { values: req.subset.map((s) => ({ stringValue: s })) } } } },
        },
      };
    }

    const state = new UpstreamState(headers);
    call.write(first);
    if (body === undefined || mode === "buffered") {
      const r1 = await inbox.next();
      if (!state.apply(r1, "request_headers") && body !== undefined) {
        call.write({ request_body: { body, end_of_stream: true } });
        state.apply(await inbox.next(), "request_body");
        state.upstreamBody = body;
      }
    } else {
      const size = req.chunkBytes ?? 16 * 1024;
      if (body.length === 0) call.write({ request_body: { body, end_of_stream: true } });
      for (let off = 0; off < body.length; off += size) {
        call.write({ request_body: { body: body.subarray(off, off + size), end_of_stream: off + size >= body.length } });
      }
      if (!state.apply(await inbox.next(), "request_headers")) {
        const parts: Buffer[] = [];
        for (;;) {
          const r = await inbox.next();
          state.responses.push(r);
          const streamed = r.request_body?.response?.body_mutation?.streamed_response;
          if (r.immediate_response) {
            state.immediate = r.immediate_response;
            break;
          }
          if (!streamed) throw new Error(`expected streamed_response, got ${JSON.stringify(r)}`);
          parts.push(streamed.body ?? Buffer.alloc(0));
          state.chunkSizes.push(streamed.body?.length ?? 0);
          if (streamed.end_of_stream) break;
        }
        state.upstreamBody = Buffer.concat(parts);
      }
    }
    if (state.immediate) state.immediate = { ...state.immediate, status: { code: statusCodeNumber(this.def, state.immediate.status.code) } };
    return {
      upstreamHeaders: state.headers,
      dynamicMetadata: state.dynamicMetadata,
      clearRouteCache: state.clearRouteCache,
      immediateResponse: state.immediate,
      upstreamBody: state.upstreamBody,
      streamedChunkSizes: state.chunkSizes,
      responses: state.responses,
      protocolError: state.protocolError,
      complete: async (responseStatus?: number) => {
        if (responseStatus !== undefined && !state.immediate) {
          call.write({ response_headers: { headers: { headers: [{ key: ":status", raw_value: Buffer.from(String(responseStatus)) }] }, end_of_stream: true } });
          const r = await inbox.next();
          if (!r.response_headers) throw new Error(`expected response_headers answer, got ${JSON.stringify(r)}`);
        }
        call.end();
        await inbox.closed();
      },
      cancel: () => call.cancel(),
    };
  }
}

/** Request headers as Envoy holds them, mutated by the processor's answers. */
class UpstreamState {
  readonly headers: Map<string, string>;
  readonly responses: ProcessingResponse[] = [];
  readonly chunkSizes: number[] = [];
  dynamicMetadata: Struct | undefined;
  clearRouteCache = false;
  immediate: ImmediateResponse | undefined;
  upstreamBody: Buffer = Buffer.alloc(0);
  protocolError: string | null = null;

  constructor(initial: Record<string, string>) {
    this.headers = new Map(Object.entries(initial));
  }

  /** Applies one answer; returns true when processing stops here (immediate response). */
  apply(r: ProcessingResponse, expected: "request_headers" | "request_body"): boolean {
    this.responses.push(r);
    if (r.immediate_response) {
      this.immediate = r.immediate_response;
      return true;
    }
    const common = expected === "request_headers" ? r.request_headers?.response : r.request_body?.response;
    if (!(expected in r)) throw new Error(`expected a ${expected} answer, got ${JSON.stringify(Object.keys(r))}`);
    if (r.dynamic_metadata) this.dynamicMetadata = r.dynamic_metadata;
    if (common?.header_mutation) {
      this.mutate(common.header_mutation);
      if (common.clear_route_cache) this.clearRouteCache = true;
    }
    return false;
  }

  private mutate(m: HeaderMutation): void {
    for (const key of m.remove_headers ?? []) if (!key.startsWith(":") && key !== "host") this.headers.delete(key.toLowerCase());
    for (const opt of m.set_headers ?? []) {
      const key = opt.header.key.toLowerCase();
      const hasRaw = opt.header.raw_value !== undefined && opt.header.raw_value.length > 0;
      const hasValue = typeof opt.header.value === "string" && opt.header.value.length > 0;
      if (hasRaw && hasValue) {
        this.protocolError = `header ${key}: both value and raw_value set (Envoy answers 500)`;
        continue;
      }
      if (FORBIDDEN(key)) continue;
      const value = hasRaw ? opt.header.raw_value!.toString("latin1") : "";
      const action = opt.append_action ?? "APPEND_IF_EXISTS_OR_ADD";
      const existing = this.headers.get(key);
      if (action === "ADD_IF_ABSENT" && existing !== undefined) continue;
      if (action === "OVERWRITE_IF_EXISTS" && existing === undefined) continue;
      this.headers.set(key, action === "APPEND_IF_EXISTS_OR_ADD" && existing !== undefined ? `${existing},${value}` : value);
    }
  }
}

/** Queues server messages so the client can await them one at a time, with a timeout. */
class Inbox {
  private readonly queued: ProcessingResponse[] = [];
  private waiter: { resolve: (r: ProcessingResponse) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly done: Promise<void>;

  constructor(
    call: ClientDuplexStream<ProcessingRequest, ProcessingResponse>,
    private readonly timeoutMs: number,
  ) {
    call.on("data", (r: ProcessingResponse) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(r);
      } else this.queued.push(r);
    });
    this.done = new Promise((resolve) => {
      const stop = (err?: Error) => {
        this.failure = err ?? new Error("stream ended");
        this.waiter?.reject(this.failure);
        this.waiter = undefined;
        resolve();
      };
      call.on("end", () => stop());
      call.on("error", (e: Error) => stop(e));
    });
  }

  next(): Promise<ProcessingResponse> {
    const r = this.queued.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no answer from the ext_proc server within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = {
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  closed(): Promise<void> {
    return this.done;
  }
}
