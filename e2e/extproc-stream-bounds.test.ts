/**
 * The ext_proc server's bounds (extProc.*): a stream that is routed and never ended gives its
 * worker's count back after maxStreamAgeMs, or when its connection is cut after
 * maxConnectionAgeMs + grace, or when the connection goes half-open (keepalive pings unanswered);
 * streams beyond maxConcurrentStreams are refused with RESOURCE_EXHAUSTED; bodies beyond
 * maxBufferedBodyBytes are routed without being held.
 */
import { status } from "@grpc/grpc-js";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { splitHostPort } from "../src/common/host-port";
import type { ProcessingRequest } from "../src/extproc/messages";
import { EnvoyExtProcClient } from "./support/envoy-ext-proc-client";
import { chatBody, startTestRouter, testConfig, type RunningRouter } from "./support/router-fixture";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const inFlight = (r: RunningRouter) => r.service.config.workers.reduce((n, w) => n + r.service.router.inFlight.inFlight(w.id), 0);
const running = (r: RunningRouter) => [...r.service.router.loads().values()].reduce((n, l) => n + l.running, 0);

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await sleep(20);
  return check();
}

async function withRouter(extProc: Record<string, unknown>, test: (r: RunningRouter) => Promise<void>): Promise<void> {
  // Ledger entries far from their predicted end: only the stream's end retires them.
  const config = testConfig({ extProc: { listen: "127.0.0.1:0", ...extProc }, routing: { load: { scrapeMetrics: false, expectedOutputTokens: 10_000_000 } } });
  const r = await startTestRouter(config);
  try {
    await test(r);
  } finally {
    await r.stop();
  }
}

/**
 * A TCP relay to the router that can go silent: after blackHole() it stops carrying bytes either way
 * but keeps both sockets open — what a dead Envoy host or a dropped NAT entry looks like to the
 * router (no FIN, no RST, nothing).
 */
async function blackHoleRelay(target: string): Promise<{ address: string; blackHole(): void; close(): void }> {
  const [host, port] = splitHostPort(target);
  const pairs: [net.Socket, net.Socket][] = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    client.pipe(upstream);
    upstream.pipe(client);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    blackHole: () => {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close: () => {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      server.close();
    },
  };
}

describe("ext_proc stream bounds", () => {
  // Control first: without keepalive (pings every 10 min) the same half-open connection holds its
  // count, so the release below is the keepalive's doing.
  it.each([
    { keepaliveTimeMs: 300, keepaliveTimeoutMs: 300, released: true },
    { keepaliveTimeMs: 600_000, keepaliveTimeoutMs: 300, released: false },
  ])("a routed stream on a half-open connection releases its count: $released with keepaliveTimeMs $keepaliveTimeMs", async ({ keepaliveTimeMs, keepaliveTimeoutMs, released }) => {
    await withRouter({ keepaliveTimeMs, keepaliveTimeoutMs }, async (r) => {
      const relay = await blackHoleRelay(r.service.extProc.address);
      // The client's own keepalive off: only the router's pings probe the connection.
      const client = new EnvoyExtProcClient(relay.address, { "grpc.keepalive_time_ms": 3_600_000 });
      try {
        const ex = await client.process({ path: "/v1/chat/completions", body: chatBody("half-open", "hi") });
        expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
        expect(inFlight(r)).toBe(1);
        relay.blackHole();
        expect(await until(() => inFlight(r) === 0, 2500)).toBe(released);
        expect(running(r)).toBe(released ? 0 : 1);
      } finally {
        client.close();
        relay.close();
      }
    });
  });

  it("a routed stream that never ends releases its count after extProc.maxStreamAgeMs", async () => {
    await withRouter({ maxStreamAgeMs: 400 }, async (r) => {
      const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("never ends", "hi") });
      expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
      expect([inFlight(r), running(r)]).toEqual([1, 1]);
      // Neither response headers nor a half-close ever come.
      expect(await until(() => inFlight(r) === 0, 3000)).toBe(true);
      expect(running(r)).toBe(0);
      const streams = await r.service.metrics.registry.getSingleMetricAsString("prefix_router_extproc_streams_total");
      expect(streams).toMatch(/end="expired"} 1/);
    });
  });

  it("a routed stream on a connection past extProc.maxConnectionAgeMs + grace is cut and releases its count", async () => {
    await withRouter({ maxConnectionAgeMs: 300, maxConnectionAgeGraceMs: 300 }, async (r) => {
      await r.client.process({ path: "/v1/chat/completions", body: chatBody("old connection", "hi") });
      expect(inFlight(r)).toBe(1);
      expect(await until(() => inFlight(r) === 0, 3000)).toBe(true);
      expect(running(r)).toBe(0);
    });
  });

  it("refuses streams beyond extProc.maxConcurrentStreams with RESOURCE_EXHAUSTED, and takes new ones once some end", async () => {
    await withRouter({ maxConcurrentStreams: 2 }, async (r) => {
      const held = [
        await r.client.process({ path: "/v1/chat/completions", body: chatBody("one", "hi") }),
        await r.client.process({ path: "/v1/chat/completions", body: chatBody("two", "hi") }),
      ];
      await expect(r.client.process({ path: "/v1/chat/completions", body: chatBody("three", "hi") })).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
      expect(inFlight(r)).toBe(2);
      await held[0].complete(200);
      const again = await r.client.process({ path: "/v1/chat/completions", body: chatBody("four", "hi") });
      expect(again.upstreamHeaders.get("x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
      await again.complete(200);
      await held[1].complete(200);
      expect(inFlight(r)).toBe(0);
      const refused = await r.service.metrics.registry.getSingleMetricAsString("prefix_router_extproc_streams_refused_total");
      expect(refused).toMatch(/refused_total 1/);
    });
  });

  it("routes a body that does not fit in extProc.maxBufferedBodyBytes without holding it, and streams it through", async () => {
    const MiB = 1024 * 1024;
    await withRouter({ maxBufferedBodyBytes: MiB }, async (r) => {
      // One full-duplex stream holds 768 KiB of an unfinished body.
      const holder = r.client.raw();
      const headers: ProcessingRequest = {
        request_headers: { headers: { headers: [":method", "POST", ":path", "/v1/chat/completions"].flatMap((_, i, a) => (i % 2 ? [] : [{ key: a[i], raw_value: Buffer.from(a[i + 1]) }])) } },
        protocol_config: { request_body_mode: "FULL_DUPLEX_STREAMED", response_body_mode: "NONE" },
      };
      holder.write(headers);
      holder.write({ request_body: { body: Buffer.alloc(768 * 1024, 0x20), end_of_stream: false } });
      await until(() => r.service.extProc.gate.bufferedBytes > 0, 2000);
      expect(r.service.extProc.gate.bufferedBytes).toBe(768 * 1024);

      // A 512 KiB body does not fit beside it: routed by the fallback, the body intact upstream.
      const payload = Buffer.from(chatBody("z".repeat(512 * 1024), "hi"));
      const ex = await r.client.process({ path: "/v1/chat/completions", body: payload, mode: "full-duplex-streamed", chunkBytes: 64 * 1024 });
      expect(ex.upstreamHeaders.get("x-prefix-router-reason")).toBe("body-buffer-full");
      expect(ex.upstreamBody.equals(payload)).toBe(true);
      await ex.complete(200);
      // A buffered one neither.
      const buffered = await r.client.process({ path: "/v1/chat/completions", body: payload });
      expect(buffered.upstreamHeaders.get("x-prefix-router-reason")).toBe("body-buffer-full");
      await buffered.complete(200);
      expect(r.service.extProc.gate.bufferedBytes).toBe(768 * 1024);

      // Once the holder's stream ends, its bytes are back and a body fits again.
      holder.cancel();
      expect(await until(() => r.service.extProc.gate.bufferedBytes === 0, 2000)).toBe(true);
      const fits = await r.client.process({ path: "/v1/chat/completions", body: payload, mode: "full-duplex-streamed", chunkBytes: 64 * 1024 });
      expect(fits.upstreamHeaders.get("x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
      await fits.complete(200);
      expect(r.service.extProc.gate.bufferedBytes).toBe(0);
    });
  });
});
