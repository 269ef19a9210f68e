/**
 * One Envoy ext_proc stream (= one HTTP request), as a small state machine.
 *
 * BUFFERED body mode:   headers → HeadersResponse(strip)  ·  body(eos) → BodyResponse(route mutation)
 * FULL_DUPLEX_STREAMED: headers → (held)  ·  body chunks … eos → HeadersResponse(route mutation),
 *                       then the body echoed as streamed_response chunks of ≤ 64 KiB.
 * No body (headers with end_of_stream): routed at once in the HeadersResponse.
 * Other body modes (STREAMED, BUFFERED_PARTIAL): routed at once on headers (fallback, reason
 * body-mode-unsupported), later chunks pass through untouched.
 * Response-path messages get empty answers; the response headers say which replica served. The worker's in-flight count is released when the
 * stream ends, however it ends — at the latest after extProc.maxStreamAgeMs, when the router ends
 * the stream itself (a half-open connection or a response that never ends cannot hold it longer).
 * Body bytes held count against a budget shared by all streams (stream-gate.ts); a body that does
 * not fit is routed without it (fallback, body-buffer-full).
 */
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { RouteRequest, RouteResult } from "../router/route-result";
import { destinationMetadata, destinationValue, rejection, routingCommonResponse, strippingCommonResponse } from "./decision-response";
import { readHeaders } from "./headers";
import { classifyServed, readServedEndpoint } from "./served-endpoint";
import type { BodySendMode, HttpBody, ProcessingRequest, ProcessingResponse } from "./messages";
import type { BodyBudget } from "./stream-gate";
import type { StreamOutcome } from "./stream-outcome";
import { constantAnswer } from "./proto";
import { readSubsetHint } from "./subset-hint";

export const STREAMED_CHUNK_BYTES = 64 * 1024;

type FixedAnswers = Record<"strippingHeaders" | "responseHeaders" | "responseTrailers" | "requestTrailers", ProcessingResponse>;
let fixed: FixedAnswers | undefined;

/** The answers that never change, serialized once (built on first use: the proto loads then). */
function fixedAnswers(): FixedAnswers {
  fixed ??= {
    strippingHeaders: constantAnswer({ request_headers: { response: strippingCommonResponse() } }),
    responseHeaders: constantAnswer({ response_headers: {} }),
    responseTrailers: constantAnswer({ response_trailers: {} }),
    requestTrailers: constantAnswer({ request_trailers: {} }),
  };
  return fixed;
}

export type BodyModeSetting = "auto" | "buffered" | "full-duplex-streamed";

export interface StreamDeps {
  route(request: RouteRequest): Promise<RouteResult>;
  readonly bodyMode: BodyModeSetting;
  readonly debugHeaders: boolean;
  /** Fallback endpoints listed after the pick (extProc.fallbackEndpoints). */
  readonly fallbackEndpoints: number;
  /** In full-duplex mode, a body past this size is routed early (fallback) and streamed through. */
  readonly maxBodyBytes: number;
  /** Body bytes all streams may hold together (extProc.maxBufferedBodyBytes). */
  readonly bodyBudget: BodyBudget;
  /** The router ends a stream open this long (extProc.maxStreamAgeMs). */
  readonly maxStreamAgeMs: number;
  onEnd(outcome: StreamOutcome): void;
}

type Mode = "buffered" | "full-duplex-streamed" | "other";
type Phase = "headers" | "body" | "routed";

export class ProcessStream {
  private phase: Phase = "headers";
  private mode: Mode = "buffered";
  private responseMode: BodySendMode | undefined;
  private method: string | null = null;
  private path: string | null = null;
  private requestId: string | null = null;
  private subset: string[] | null = null;
  private headers: ReadonlyMap<string, string> = new Map();
  private readonly chunks: Buffer[] = [];
  private bodyBytes = 0;
  private result: RouteResult | null = null;
  private responseStatus: number | null = null;
  private servedBy: string | null = null;
  private queue: Promise<void> = Promise.resolve();
  private ended = false;
  /** Bytes of `chunks` taken from the shared body budget. */
  private heldBytes = 0;
  private readonly ageTimer: NodeJS.Timeout;

  constructor(
    private readonly call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>,
    private readonly deps: StreamDeps,
  ) {
    this.ageTimer = setTimeout(() => this.expire(), deps.maxStreamAgeMs);
    this.ageTimer.unref();
    call.on("data", (msg: ProcessingRequest) => {
      this.queue = this.queue.then(() => this.handle(msg)).catch((err: unknown) => this.abort(err));
    });
    call.on("end", () => {
      this.queue = this.queue.then(() => {
        if (!this.ended) call.end();
        this.finish("completed", null);
      });
    });
    call.on("cancelled", () => this.finish("cancelled", null));
    call.on("error", (err: Error) => this.finish("error", err.message));
    // After a normal end, "close" follows "end"; queue behind it so the stream counts as completed.
    call.on("close", () => {
      this.queue = this.queue.then(() => this.finish("cancelled", null));
    });
  }

  private send(response: ProcessingResponse): void {
    if (!this.ended && !this.call.writableEnded) this.call.write(response);
  }

  private async handle(msg: ProcessingRequest): Promise<void> {
    if (msg.observability_mode) return; // Envoy ignores answers in observability mode.
    switch (msg.request) {
      case "request_headers":
        return this.onRequestHeaders(msg);
      case "request_body":
        return this.onRequestBody(msg.request_body ?? {});
      case "request_trailers":
        return this.onRequestTrailers();
      case "response_headers": {
        const status = Number(readHeaders(msg.response_headers?.headers).get(":status"));
        this.responseStatus = Number.isFinite(status) ? status : null;
        this.servedBy = readServedEndpoint(msg);
        return this.send(fixedAnswers().responseHeaders);
      }
      case "response_body":
        return this.onResponseBody(msg.response_body ?? {});
      case "response_trailers":
        return this.send(fixedAnswers().responseTrailers);
      default:
        throw new Error(`ProcessingRequest without a known request field: ${String(msg.request)}`);
    }
  }

  private async onRequestHeaders(msg: ProcessingRequest): Promise<void> {
    if (this.phase !== "headers") {
      // A second request_headers on one stream (a proxy bug): the stream has its request already.
      this.send(fixedAnswers().strippingHeaders);
      return;
    }
    const headers = readHeaders(msg.request_headers?.headers);
    this.headers = headers;
    this.method = headers.get(":method") ?? null;
    this.path = headers.get(":path") ?? null;
    this.requestId = headers.get("x-request-id") ?? null;
    this.subset = readSubsetHint(msg);
    this.mode = this.resolveMode(msg.protocol_config?.request_body_mode);
    this.responseMode = msg.protocol_config?.response_body_mode;

    if (msg.request_headers?.end_of_stream) {
      this.answerHeaders(await this.decide({ body: null }));
      return;
    }
    if (this.mode === "other") {
      this.answerHeaders(await this.decide({ body: null, bodyUnavailable: "body-mode-unsupported" }));
      return;
    }
    this.phase = "body";
    if (this.mode === "buffered") this.send(fixedAnswers().strippingHeaders);
    // Full duplex: the headers answer waits for the end of the body.
  }

  private resolveMode(announced: BodySendMode | undefined): Mode {
    if (announced === "FULL_DUPLEX_STREAMED") return "full-duplex-streamed";
    if (announced === "BUFFERED") return "buffered";
    if (announced === "STREAMED" || announced === "BUFFERED_PARTIAL") return "other";
    return this.deps.bodyMode === "full-duplex-streamed" ? "full-duplex-streamed" : "buffered";
  }

  private async onRequestBody(body: HttpBody): Promise<void> {
    const chunk = body.body ?? Buffer.alloc(0);
    this.bodyBytes += chunk.length;
    if (this.phase === "routed") {
      // Already routed (unsupported mode, or an oversized full-duplex body): pass chunks through.
      if (this.mode === "full-duplex-streamed") return this.echo([chunk], !!body.end_of_stream);
      return this.send({ request_body: {} });
    }
    if (!this.deps.bodyBudget.take(chunk.length)) {
      // All streams together hold extProc.maxBufferedBodyBytes already: route without this body.
      const held = [...this.chunks.splice(0), chunk];
      const result = await this.decide({ body: null, bodyUnavailable: "body-buffer-full" });
      if (this.mode === "buffered") this.answer(result, (common) => ({ request_body: { response: common } }));
      else if (this.answerHeaders(result)) this.echo(held, !!body.end_of_stream);
      return;
    }
    this.heldBytes += chunk.length;
    this.chunks.push(chunk);
    if (this.mode === "buffered") {
      // BUFFERED sends the whole body in one message; its answer carries the routing mutation.
      const result = await this.decide({ body: joined(this.chunks.splice(0)) });
      this.answer(result, (common) => ({ request_body: { response: common } }));
      return;
    }
    if (body.end_of_stream) return this.finishFullDuplexBody(true);
    if (this.bodyBytes > this.deps.maxBodyBytes) {
      // Too large to hold: route now without the body, then stream the rest through.
      const held = this.chunks.splice(0);
      if (this.answerHeaders(await this.decide({ body: null, bodyUnavailable: "body-too-large" }))) this.echo(held, false);
    }
  }

  private async onRequestTrailers(): Promise<void> {
    if (this.mode === "full-duplex-streamed" && this.phase === "body") await this.finishFullDuplexBody(false);
    this.send(fixedAnswers().requestTrailers);
  }

  private async finishFullDuplexBody(endOfStream: boolean): Promise<void> {
    const body = joined(this.chunks.splice(0));
    if (this.answerHeaders(await this.decide({ body }))) this.echo([body], endOfStream);
  }

  private onResponseBody(body: HttpBody): void {
    if (this.responseMode === "FULL_DUPLEX_STREAMED") return this.echo([body.body ?? Buffer.alloc(0)], !!body.end_of_stream, "response_body");
    this.send({ response_body: {} });
  }

  /** Echoes body bytes as streamed_response chunks of at most 64 KiB. */
  private echo(parts: Buffer[], endOfStream: boolean, field: "request_body" | "response_body" = "request_body"): void {
    const body = joined(parts);
    if (body.length === 0) {
      if (endOfStream) this.send({ [field]: { response: { body_mutation: { streamed_response: { body, end_of_stream: true } } } } });
      return;
    }
    for (let offset = 0; offset < body.length; offset += STREAMED_CHUNK_BYTES) {
      const piece = body.subarray(offset, offset + STREAMED_CHUNK_BYTES);
      const last = offset + STREAMED_CHUNK_BYTES >= body.length;
      this.send({ [field]: { response: { body_mutation: { streamed_response: { body: piece, end_of_stream: endOfStream && last } } } } });
    }
  }

  private requestBase(): Omit<RouteRequest, "body"> {
    return { method: this.method ?? "", path: this.path ?? "", subset: this.subset, headers: this.headers };
  }

  /**
   * Routes the request and remembers the result for release at stream end. Once per stream: a
   * repeated message answers with the first result, never a second pick (whose count nobody would
   * release).
   */
  private async decide(body: Pick<RouteRequest, "body" | "bodyUnavailable">): Promise<RouteResult> {
    try {
      if (this.result !== null) return this.result;
      const result = await this.deps.route({ ...this.requestBase(), ...body });
      this.result = result;
      this.phase = "routed";
      return result;
    } finally {
      this.giveBackBody(); // decided: the body is echoed or dropped, no longer held
    }
  }

  private giveBackBody(): void {
    this.deps.bodyBudget.give(this.heldBytes);
    this.heldBytes = 0;
  }

  /** Open longer than extProc.maxStreamAgeMs: end it (status OK — Envoy carries on without us). */
  private expire(): void {
    if (this.ended) return;
    if (!this.call.writableEnded) this.call.end();
    this.finish("expired", `stream open longer than extProc.maxStreamAgeMs (${this.deps.maxStreamAgeMs} ms)`);
  }

  /** The routing answer as a HeadersResponse; false when the request was rejected. */
  private answerHeaders(result: RouteResult): boolean {
    return this.answer(result, (common) => ({ request_headers: { response: common } }));
  }

  /**
   * Sends the routing answer in the message type Envoy waits for; a rejection becomes an
   * ImmediateResponse instead. Returns false when the request was rejected.
   */
  private answer(result: RouteResult, wrap: (common: ReturnType<typeof routingCommonResponse>) => ProcessingResponse): boolean {
    if (this.ended) {
      if (result.kind === "route") result.release(); // the stream is gone: nobody will use the pick
      return false;
    }
    if (result.kind === "reject") {
      this.send({ immediate_response: rejection(result, this.deps.debugHeaders) });
      return false;
    }
    const options = { debug: this.deps.debugHeaders, fallbacks: this.deps.fallbackEndpoints };
    this.send({ ...wrap(routingCommonResponse(result, options)), dynamic_metadata: destinationMetadata(destinationValue(result, options.fallbacks)) });
    return true;
  }

  /** A bug, not bad input: close the stream cleanly so Envoy carries on without us. */
  private abort(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (!this.ended && !this.call.writableEnded) this.call.end();
    this.finish("error", message);
  }

  private finish(end: StreamOutcome["end"], error: string | null): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.ageTimer);
    this.chunks.length = 0;
    this.giveBackBody();
    if (this.result?.kind === "route") this.result.release();
    this.deps.onEnd({
      requestId: this.requestId,
      method: this.method,
      path: this.path,
      result: this.result,
      bodyMode: this.method === null ? null : this.mode,
      bodyBytes: this.bodyBytes,
      responseStatus: this.responseStatus,
      servedBy: this.servedBy,
      served: this.servedBy !== null && this.result?.kind === "route" ? classifyServed(this.result, this.servedBy) : null,
      end,
      error,
    });
  }
}

/** The body's bytes in one buffer: BUFFERED mode sends it in one message, which is used as it is (no copy). */
function joined(parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
