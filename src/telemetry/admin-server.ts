/**
 * The admin HTTP server (its own port, never the ext_proc or ingest port):
 *   GET  /healthz         → 200 "ok"
 *   GET  /debug/workers   → per-worker cache blocks, liveness, sequence state, in-flight
 *   GET  /debug/ingest    → ingest counters
 *   POST /debug/lookup    → {"keys": [...], "workers": [...]?} → leading runs per worker
 *   GET  /debug/heap      → heap after a full GC (main thread and tokenizer threads) and RSS; only
 *                           when node runs with --expose-gc
 * Extra routes (e.g. /metrics) are registered by the caller.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export type AdminHandler = (req: IncomingMessage, body: Buffer) => Promise<{ status: number; contentType: string; body: string }>;

export interface AdminServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024 * 1024;

export function json(value: unknown, status = 200): { status: number; contentType: string; body: string } {
  return { status, contentType: "application/json", body: JSON.stringify(value, null, 1) };
}

export function startAdminServer(listen: string, routes: Readonly<Record<string, AdminHandler>>): Promise<AdminServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0];
      const handler = routes[`${req.method} ${path}`];
      const reply = handler ? handler(req, Buffer.concat(chunks)) : Promise.resolve(json({ error: `no route ${req.method} ${path}` }, 404));
      reply
        .catch((err: unknown) => json({ error: String(err) }, 500))
        .then((r) => {
          res.writeHead(r.status, { "content-type": r.contentType });
          res.end(r.body);
        });
    });
  });
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(listen.slice(colon + 1)), host, () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        port,
        address: `${host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
