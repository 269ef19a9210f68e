/**
 * Where a client's request goes in, per router under test:
 * - HttpFront: a proxy that forwards the request itself (Envoy, sglang-router, vllm-router, or
 *   prefix-router behind a real Envoy);
 * - ExtProcFront: prefix-router without a proxy — this client runs Envoy's ext_proc sequence
 *   against the router (e2e/support/envoy-ext-proc-client.ts, BUFFERED, as envoy/envoy.yaml
 *   configures it), then sends the request to the replica the router picked, then reports the
 *   response status back, which ends the exchange. When the router names no replica (it failed),
 *   the replica with the fewest requests in flight takes it, as the shipped config's least_request
 *   fallback policy does.
 * Either way the caller gets the replica's answer and the wall time the client saw; prefix-router's
 * decision, reason and decision time are in the reply headers either way (the shipped Envoy config
 * echoes them).
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { DEBUG_HEADERS, DESTINATION_HEADER } from "../../../src/extproc/decision-response";
import { splitHostPort } from "../../../src/common/host-port";
import { EnvoyExtProcClient } from "../../support/envoy-ext-proc-client";

/** The router's debug headers that the shipped Envoy config echoes to the client. */
const ECHOED = [DEBUG_HEADERS.decision, DEBUG_HEADERS.reason, DEBUG_HEADERS.decisionMicros];

export interface FrontReply {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  /** Wall ms from sending the request to having the whole response. */
  readonly wallMs: number;
}

export interface Front {
  /** The request the client sends; `headers` go to the proxy (never to an ext_proc router: Envoy forwards none of them). */
  send(path: string, body: string, headers: Readonly<Record<string, string>>): Promise<FrontReply>;
  /** Requests the router could not place itself (ExtProcFront only). */
  readonly fallbacks: number;
  close(): void;
}

/** One HTTP/1.1 POST over a keep-alive pool. */
function post(agent: Agent, address: string, path: string, body: string, headers: Readonly<Record<string, string>>): Promise<Omit<FrontReply, "wallMs">> {
  const [host, port] = splitHostPort(address);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port, path, method: "POST", agent, headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

export class HttpFront implements Front {
  readonly fallbacks = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: Infinity });

  constructor(private readonly address: string) {}

  async send(path: string, body: string, headers: Readonly<Record<string, string>>): Promise<FrontReply> {
    const t = performance.now();
    const reply = await post(this.agent, this.address, path, body, headers);
    return { ...reply, wallMs: performance.now() - t };
  }

  close(): void {
    this.agent.destroy();
  }
}

export class ExtProcFront implements Front {
  fallbacks = 0;
  private readonly client: EnvoyExtProcClient;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly inFlight: Map<string, number>;

  constructor(extProcAddress: string, replicas: readonly string[]) {
    this.client = new EnvoyExtProcClient(extProcAddress);
    this.inFlight = new Map(replicas.map((r) => [r, 0]));
  }

  async send(path: string, body: string, headers: Readonly<Record<string, string>>): Promise<FrontReply> {
    const t = performance.now();
    let exchange: Awaited<ReturnType<EnvoyExtProcClient["process"]>> | null = null;
    try {
      // Envoy's message_timeout is 0.25 s; the router answers within its decisionTimeoutMs (150 ms)
      // by itself, so a generous client timeout only guards against a hung stream.
      exchange = await this.client.process({ path, body, messageTimeoutMs: 30_000 });
    } catch {
      exchange = null;
    }
    let address = exchange?.upstreamHeaders.get(DESTINATION_HEADER);
    if (!address || !this.inFlight.has(address)) {
      this.fallbacks++;
      address = this.leastLoaded();
    }
    this.inFlight.set(address, this.inFlight.get(address)! + 1);
    try {
      const reply = await post(this.agent, address, path, body, headers);
      await exchange?.complete(reply.status).catch(() => undefined);
      const debug = ECHOED.flatMap((h) => {
        const v = exchange?.upstreamHeaders.get(h);
        return v === undefined ? [] : [[h, v] as const];
      });
      return { ...reply, headers: { ...reply.headers, ...Object.fromEntries(debug) }, wallMs: performance.now() - t };
    } catch (err) {
      exchange?.cancel();
      throw err;
    } finally {
      this.inFlight.set(address, this.inFlight.get(address)! - 1);
    }
  }

  private leastLoaded(): string {
    let best = "";
    let min = Infinity;
    for (const [address, n] of this.inFlight) {
      if (n < min) [best, min] = [address, n];
    }
    return best;
  }

  close(): void {
    this.client.close();
    this.agent.destroy();
  }
}
