/** Shared gRPC plumbing: where the .proto files live, and binding a server with a clean close(). */
import { join } from "node:path";
import { ServerCredentials, type Server } from "@grpc/grpc-js";

/** proto/ at the repository root; this file sits in src/common or dist/common. */
export const PROTO_ROOT = join(__dirname, "..", "..", "proto");

export interface RunningServer {
  readonly server: Server;
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly address: string;
  /** Stops accepting calls and waits up to graceMs for open ones before cutting them. */
  close(graceMs?: number): Promise<void>;
}

export function bindAndWrap(server: Server, listen: string, credentials: ServerCredentials = ServerCredentials.createInsecure()): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, credentials, (err, port) => {
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
