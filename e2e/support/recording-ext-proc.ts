/**
 * A minimal ext_proc server that answers every message with "continue, no change" and records,
 * per stream, when each message arrived and how the stream ended — to observe what a real Envoy
 * sends and when (e2e/envoy-stream-timing.test.ts). It routes nothing; the override_host
 * fallback places the requests.
 */
import { Server, type ServerDuplexStream } from "@grpc/grpc-js";
import { bindAndWrap, type RunningServer } from "../../src/common/grpc-server";
import { DESTINATION_HEADER } from "../../src/extproc/decision-response";
import { mutation, readHeaders } from "../../src/extproc/headers";
import type { ProcessingRequest, ProcessingResponse } from "../../src/extproc/messages";
import { externalProcessorService } from "../../src/extproc/proto";

export interface RecordedMessage {
  readonly kind: NonNullable<ProcessingRequest["request"]>;
  /** ms since the stream opened */
  readonly at: number;
  readonly endOfStream: boolean;
  readonly bytes: number;
  /** metadata_context.filter_metadata and attributes, as Envoy sent them. */
  readonly metadata: ProcessingRequest["metadata_context"];
  readonly attributes: ProcessingRequest["attributes"];
}

export interface RecordedStream {
  /** Date.now() when Envoy opened the stream. */
  readonly opened: number;
  readonly requestId: string | null;
  readonly messages: RecordedMessage[];
  /** ms since open when Envoy half-closed its side (the gRPC "end"), or null. */
  halfClosedAt: number | null;
  /** ms since open when the call was cancelled (reset) by Envoy, or null. */
  cancelledAt: number | null;
}

export interface RecordingExtProc {
  readonly address: string;
  readonly streams: RecordedStream[];
  close(): Promise<void>;
}

export interface RecordingOptions {
  /** A value for x-gateway-destination-endpoint, set in the answer to the request headers. */
  readonly destination?: (headers: ReadonlyMap<string, string>) => string | null;
}

function answer(msg: ProcessingRequest, options: RecordingOptions): ProcessingResponse {
  switch (msg.request) {
    case "request_headers": {
      const destination = options.destination?.(readHeaders(msg.request_headers?.headers)) ?? null;
      return destination === null ? { request_headers: {} } : { request_headers: { response: { header_mutation: mutation([[DESTINATION_HEADER, destination]]) } } };
    }
    case "request_body":
      return { request_body: {} };
    case "response_headers":
      return { response_headers: {} };
    case "response_body":
      return { response_body: {} };
    case "request_trailers":
      return { request_trailers: {} };
    default:
      return { response_trailers: {} };
  }
}

export async function startRecordingExtProc(options: RecordingOptions = {}): Promise<RecordingExtProc> {
  const streams: RecordedStream[] = [];
  const server = new Server();
  server.addService(externalProcessorService(), {
    Process: (call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      const opened = Date.now();
      const since = () => Date.now() - opened;
      let stream: RecordedStream | null = null;
      const record = (): RecordedStream => {
        stream ??= { opened, requestId: null, messages: [], halfClosedAt: null, cancelledAt: null };
        return stream;
      };
      call.on("data", (msg: ProcessingRequest) => {
        const s = record();
        if (msg.request === "request_headers" && s.messages.length === 0) {
          (s as { requestId: string | null }).requestId = readHeaders(msg.request_headers?.headers).get("x-request-id") ?? null;
          streams.push(s);
        }
        const body = msg.request_body ?? msg.response_body;
        const eos = msg.request_headers?.end_of_stream ?? msg.response_headers?.end_of_stream ?? body?.end_of_stream ?? false;
        s.messages.push({ kind: msg.request!, at: since(), endOfStream: !!eos, bytes: body?.body?.length ?? 0, metadata: msg.metadata_context, attributes: msg.attributes });
        if (!msg.observability_mode) call.write(answer(msg, options));
      });
      call.on("end", () => {
        record().halfClosedAt = since();
        call.end();
      });
      call.on("cancelled", () => (record().cancelledAt = since()));
      call.on("error", () => undefined);
    },
  });
  const running: RunningServer = await bindAndWrap(server, "127.0.0.1:0");
  return { address: running.address, streams, close: () => running.close(500) };
}
