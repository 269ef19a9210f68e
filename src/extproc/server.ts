/** The ext_proc gRPC server: one ProcessStream per Envoy stream, all sharing one RequestRouter. */
import { Server, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import type { RouteRequest, RouteResult } from "../router/route-result";
import type { ProcessingRequest, ProcessingResponse } from "./messages";
import { ProcessStream, type BodyModeSetting } from "./process-stream";
import { externalProcessorService } from "./proto";
import type { StreamOutcome } from "./stream-outcome";

export interface ExtProcServerOptions {
  /** host:port; port 0 picks a free one. */
  readonly listen: string;
  readonly maxMessageBytes: number;
  readonly bodyMode: BodyModeSetting;
  readonly debugHeaders: boolean;
  readonly maxBodyBytes: number;
  route(request: RouteRequest): Promise<RouteResult>;
  onStreamEnd?(outcome: StreamOutcome): void;
}

export interface RunningServer {
  readonly server: Server;
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly address: string;
  /** Stops accepting streams and waits up to graceMs for open ones before cutting them. */
  close(graceMs?: number): Promise<void>;
}

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
        maxBodyBytes: options.maxBodyBytes,
        onEnd: (outcome) => options.onStreamEnd?.(outcome),
      });
    },
  });
  return bindAndWrap(server, options.listen);
}

/** Binds insecurely (Envoy talks to the router over loopback or a mesh) and wraps close(). */
export function bindAndWrap(server: Server, listen: string): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(new Error(`cannot listen on ${listen}: ${err.message}`));
      const host = listen.slice(0, listen.lastIndexOf(":"));
      resolve({
        server,
        port,
        address: `${host}:${port}`,
        close: (graceMs = 2000) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              done();
            }, graceMs);
            server.tryShutdown(() => {
              clearTimeout(timer);
              done();
            });
          }),
      });
    });
  });
}
