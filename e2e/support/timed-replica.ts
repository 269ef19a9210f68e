/**
 * An upstream whose timing is set per request, to observe when Envoy talks to ext_proc relative
 * to the upstream's progress. The query string sets it: `h` ms until the response headers are
 * flushed, `f` ms until the first body byte, `d` ms until the response ends (chunks every
 * `every` ms in between), `sse=1` for an SSE body. It records when each step happened.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReplicaTimeline {
  readonly arrived: number;
  headersAt: number | null;
  firstByteAt: number | null;
  doneAt: number | null;
  /** The client went away before the end. */
  abortedAt: number | null;
}

export interface TimedReplica {
  readonly address: string;
  /** Timelines by the request's `id` query parameter (Date.now() values). */
  readonly timelines: Map<string, ReplicaTimeline>;
  close(): Promise<void>;
}

const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));

export async function startTimedReplica(): Promise<TimedReplica> {
  const timelines = new Map<string, ReplicaTimeline>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/health") return void res.writeHead(200).end("ok");
    req.resume();
    const arrived = Date.now();
    const n = (k: string, d: number) => Number(url.searchParams.get(k) ?? d);
    const [h, f, d, every] = [n("h", 0), n("f", 0), n("d", 0), n("every", 100)];
    const sse = url.searchParams.get("sse") === "1";
    const line: ReplicaTimeline = { arrived, headersAt: null, firstByteAt: null, doneAt: null, abortedAt: null };
    timelines.set(url.searchParams.get("id") ?? String(timelines.size), line);
    res.on("close", () => {
      if (line.doneAt === null) line.abortedAt = Date.now();
    });
    void (async () => {
      await sleepUntil(arrived + h);
      res.writeHead(200, { "content-type": sse ? "text/event-stream" : "application/json" });
      res.flushHeaders();
      line.headersAt = Date.now();
      await sleepUntil(arrived + f);
      let i = 0;
      const chunk = () => (sse ? `data: {"i":${i++}}\n\n` : `{"i":${i++}}\n`);
      res.write(chunk());
      line.firstByteAt = Date.now();
      for (let t = f + every; t < d; t += every) {
        await sleepUntil(arrived + t);
        if (res.destroyed) return;
        res.write(chunk());
      }
      await sleepUntil(arrived + d);
      if (res.destroyed) return;
      res.end(sse ? "data: [DONE]\n\n" : "");
      line.doneAt = Date.now();
    })();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    timelines,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
