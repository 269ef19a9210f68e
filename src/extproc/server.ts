/** The ext_proc gRPC server: one ProcessStream per Envoy stream, all sharing one RequestRouter. */
import { Server, status, type ServerDuplexStream } from "@grpc/grpc-js";
import { bindAndWrap, type RunningServer } from "../common/grpc-server";
import type { RouteRequest, RouteResult } from "../router/route-result";
import type { ProcessingRequest, ProcessingResponse } from "./messages";
import { ProcessStream, type BodyModeSetting } from "./process-stream";
import { addStandardServices } from "../common/grpc-services";
import { EXT_PROC_SERVICE, externalProcessorDefinition, externalProcessorService } from "./proto";
import { StreamGate } from "./stream-gate";
import type { StreamOutcome } from "./stream-outcome";

/** Connection and stream bounds (config extProc.*, docs/robustness.md). */
export interface ExtProcBounds {
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  readonly maxStreamAgeMs: number;
  readonly maxConcurrentStreams: number;
  readonly maxBufferedBodyBytes: number;
}

export interface ExtProcServerOptions {
  /** host:port; port 0 picks a free one. */
  readonly listen: string;
  readonly maxMessageBytes: number;
  readonly bodyMode: BodyModeSetting;
  readonly debugHeaders: boolean;
  readonly fallbackEndpoints: number;
  readonly maxBodyBytes: number;
  /** Serve gRPC server reflection (grpc.health.v1 is always served). */
  readonly reflection?: boolean;
  readonly bounds: ExtProcBounds;
  route(request: RouteRequest): Promise<RouteResult>;
  onStreamEnd?(outcome: StreamOutcome): void;
}

export type { RunningServer };

export interface ExtProcServer extends RunningServer {
  /** Open streams, refused streams and buffered body bytes (metrics). */
  readonly gate: Pick<StreamGate, "openStreams" | "refused" | "bufferedBytes">;
}

export async function startExtProcServer(options: ExtProcServerOptions): Promise<ExtProcServer> {
  const { bounds } = options;
  const server = new Server({
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_send_message_length": options.maxMessageBytes,
    "grpc.keepalive_time_ms": bounds.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": bounds.keepaliveTimeoutMs,
    "grpc.max_connection_age_ms": bounds.maxConnectionAgeMs,
    "grpc.max_connection_age_grace_ms": bounds.maxConnectionAgeGraceMs,
  });
  // No HTTP/2 stream limit: a stream over the bound is refused at once (RESOURCE_EXHAUSTED, and
  // Envoy's failure_mode_allow decides), rather than queued in Envoy until its message_timeout.
  const gate = new StreamGate(bounds);
  server.addService(externalProcessorService(), {
    Process: (call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      if (!gate.open()) {
        call.emit("error", { code: status.RESOURCE_EXHAUSTED, details: `prefix-router has extProc.maxConcurrentStreams (${bounds.maxConcurrentStreams}) streams open` });
        return;
      }
      new ProcessStream(call, {
        route: options.route,
        bodyMode: options.bodyMode,
        debugHeaders: options.debugHeaders,
        fallbackEndpoints: options.fallbackEndpoints,
        maxBodyBytes: options.maxBodyBytes,
        bodyBudget: gate,
        maxStreamAgeMs: bounds.maxStreamAgeMs,
        onEnd: (outcome) => {
          gate.close();
          options.onStreamEnd?.(outcome);
        },
      });
    },
  });
  addStandardServices(server, [EXT_PROC_SERVICE], externalProcessorDefinition(), options.reflection ?? false);
  return { ...(await bindAndWrap(server, options.listen)), gate };
}
