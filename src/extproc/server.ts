/** The ext_proc gRPC server: one ProcessStream per Envoy stream, all sharing one RequestRouter. */
import { Server, type ServerDuplexStream } from "@grpc/grpc-js";
import { bindAndWrap, type RunningServer } from "../common/grpc-server";
import type { RouteRequest, RouteResult } from "../router/route-result";
import type { ProcessingRequest, ProcessingResponse } from "./messages";
import { ProcessStream, type BodyModeSetting } from "./process-stream";
import { addStandardServices } from "../common/grpc-services";
import { EXT_PROC_SERVICE, externalProcessorDefinition, externalProcessorService } from "./proto";
import type { StreamOutcome } from "./stream-outcome";

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
  route(request: RouteRequest): Promise<RouteResult>;
  onStreamEnd?(outcome: StreamOutcome): void;
}

export type { RunningServer };

export async function startExtProcServer(options: ExtProcServerOptions): Promise<RunningServer> {
  const server = new Server({
    "grpc.max_receive_message_length": options.maxMessageBytes,
    "grpc.max_send_message_length": options.maxMessageBytes,
  });
  server.addService(externalProcessorService(), {
    Process: (call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      new ProcessStream(call, {
        route: options.route,
        bodyMode: options.bodyMode,
        debugHeaders: options.debugHeaders,
        fallbackEndpoints: options.fallbackEndpoints,
        maxBodyBytes: options.maxBodyBytes,
        onEnd: (outcome) => options.onStreamEnd?.(outcome),
      });
    },
  });
  addStandardServices(server, [EXT_PROC_SERVICE], externalProcessorDefinition(), options.reflection ?? false);
  return bindAndWrap(server, options.listen);
}
