/**
 * An OpenAI-compatible HTTP server around one simulated replica (node:http): POST /v1/completions
 * and /v1/chat/completions (JSON or SSE with `stream: true`), GET /v1/models, /health, /metrics,
 * POST /reset_prefix_cache, and vLLM's prompt-only POST /tokenize and /v1/…/render
 * (prompt-endpoints.ts) — the vLLM endpoints a router, Envoy and a load generator touch.
 *
 * Prompts are parsed and tokenized with the router's own code (parseOpenAiBody, the tokenizer
 * registry) and keyed with its block keys, so what this replica caches is exactly what the router
 * computes. Output is filler text (filler-text.ts), `max_tokens` tokens (default 16), paced by the
 * engine through the realtime driver. Every response carries `x-sim-replica: <id>`; a non-streamed
 * generation also `x-sim-wall-ms`, the wall ms from its arrival to its response (a benchmark
 * subtracts it from what its client saw to get the time a router in between added).
 * A client that disconnects does not abort its request (the engine has no cancel), as if vLLM
 * noticed late.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { blockKeys, chainRoot } from "../prefix/block-keys";
import { parseOpenAiBody, type BodyLimits } from "../request/parse-openai-body";
import type { ModelTokenizer } from "../tokenize/tokenizer-registry";
import { FillerText } from "./filler-text";
import { errorBody, fullResponse, generationOptions, SSE_DONE, streamChunk, usageChunk, usageOf, type Endpoint, type ResponseContext } from "./openai-responses";
import { splitHostPort } from "../common/host-port";
import { PROMPT_ENDPOINTS, promptEndpoint } from "./prompt-endpoints";
import { RealtimeDriver } from "./realtime-driver";
import { fitsReplica, SimReplicaEngine } from "./replica-engine";
import type { EngineKvEvent, ReplicaConfig } from "./replica-model";
import { SimMetrics } from "./sim-metrics";

export interface SimServerOptions {
  /** Replica id, reported in `x-sim-replica` (use the router's worker id). */
  readonly id: string;
  /** host:port to listen on (port 0 picks a free one). */
  readonly listen: string;
  /** Served model name; with hashSeed, the namespace of block keys (the router's canonical name). */
  readonly model: string;
  readonly aliases?: readonly string[];
  readonly hashSeed: string;
  readonly tokenizer: ModelTokenizer;
  readonly engine: ReplicaConfig;
  /** Wall ms per model ms: 1 = the cost model's speed, 0.1 = ten times faster. */
  readonly timeScale: number;
  readonly limits?: BodyLimits;
  /**
   * The ids to generate for a prompt when the body has no `sim_output_ids`: a benchmark's scripted
   * replies for clients behind routers that rebuild the body and drop unknown fields. Else filler.
   */
  readonly scriptedOutput?: (prompt: Uint32Array) => Uint32Array | undefined;
  /** Sees every generation request as it arrived (tests check what a proxy forwarded). */
  readonly onRequest?: (request: ReceivedRequest) => void;
}

export interface ReceivedRequest {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface SimServer {
  readonly id: string;
  readonly port: number;
  /** host:port, as a router's worker address. */
  readonly address: string;
  readonly engine: SimReplicaEngine;
  readonly driver: RealtimeDriver;
  addKvSink(sink: (events: readonly EngineKvEvent[]) => void): void;
  close(): Promise<void>;
}

const ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map([
  ["/v1/chat/completions", "chat"],
  ["/v1/completions", "completions"],
]);
const DEFAULT_LIMITS: BodyLimits = { maxBodyBytes: 64 * 1024 * 1024, maxMessages: 100_000, maxPromptChars: 50_000_000 };

export async function startSimServer(options: SimServerOptions): Promise<SimServer> {
  const o = { ...options, limits: options.limits ?? DEFAULT_LIMITS };
  const engine = new SimReplicaEngine(o.engine);
  const driver = new RealtimeDriver(engine, { timeScale: o.timeScale });
  const filler = await FillerText.create(o.tokenizer);
  const metrics = new SimMetrics();
  const root = chainRoot({ hashSeed: o.hashSeed, model: o.model });
  const served = new Set([o.model, ...(o.aliases ?? [])]);
  const started = Math.floor(Date.now() / 1000);
  let requests = 0;

  const scripted = (prompt: Uint32Array, maxTokens: number): Uint32Array | undefined => {
    const ids = o.scriptedOutput?.(prompt);
    return ids && ids.length >= maxTokens ? ids.subarray(0, maxTokens) : undefined;
  };

  const send = (res: ServerResponse, status: number, body: object | string, type = "application/json") => {
    res.writeHead(status, { "content-type": type });
    res.end(typeof body === "string" ? body : JSON.stringify(body));
  };

  async function generate(req: IncomingMessage, res: ServerResponse, endpoint: Endpoint, path: string, arrivedMs: number): Promise<void> {
    const body = await readBody(req, o.limits.maxBodyBytes);
    o.onRequest?.({ path, headers: req.headers, body });
    const parsed = parseOpenAiBody(path, body, o.limits);
    if (!parsed.ok) return send(res, 400, errorBody(400, `${parsed.failure.code}: ${parsed.failure.detail}`));
    const prompt = parsed.value;
    if (!served.has(prompt.model)) return send(res, 404, errorBody(404, `The model \`${prompt.model}\` does not exist.`));
    const json = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
    const gen = generationOptions(json, endpoint);
    if (typeof gen === "string") return send(res, 400, errorBody(400, gen));
    const ids = await o.tokenizer.tokenize(prompt);
    if (!ids.ok) return send(res, 400, errorBody(400, `${ids.failure.code}: ${ids.failure.detail}`));
    const p = ids.value.length;
    if (p === 0) return send(res, 400, errorBody(400, "The prompt is empty."));
    if (!fitsReplica(o.engine, p, gen.maxTokens)) {
      const limit = o.engine.totalBlocks * o.engine.blockSize;
      return send(res, 400, errorBody(400, `This model's maximum context length is ${limit} tokens. However, you requested ${p + gen.maxTokens} tokens (${p} in the prompt, ${gen.maxTokens} in the completion).`));
    }
    const ctx: ResponseContext = { endpoint, id: `${endpoint === "chat" ? "chatcmpl" : "cmpl"}-${o.id}-${++requests}`, created: Math.floor(Date.now() / 1000), model: prompt.model };
    const request = { id: ctx.id, prompt: ids.value, promptKeys: blockKeys(ids.value, o.engine.blockSize, root), maxTokens: gen.maxTokens, root, outputTokens: simOutputIds(json, gen.maxTokens) ?? scripted(ids.value, gen.maxTokens) ?? filler.ids(gen.maxTokens) };
    if (!gen.stream) {
      driver.submit(request, {
        onDone: (t) => {
          metrics.record(t);
          res.setHeader("x-sim-wall-ms", (performance.now() - arrivedMs).toFixed(3));
          send(res, 200, fullResponse(ctx, filler.text(0, t.outputTokens), usageOf(t)));
        },
      });
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    res.flushHeaders(); // as vLLM's StreamingResponse: the headers go out before the prefill starts
    let sent = 0;
    const write = (chunk: string) => {
      if (!res.writableEnded && !res.destroyed) res.write(chunk);
    };
    // One chunk per token, as vLLM streams, even when a compressed clock delivers several at once.
    const upTo = (n: number) => {
      for (; sent < n; sent++) write(streamChunk(ctx, filler.text(sent, sent + 1)));
    };
    driver.submit(request, {
      onFirstToken: () => endpoint === "chat" && write(streamChunk(ctx, "", { role: true })),
      onProgress: upTo,
      onDone: (t) => {
        metrics.record(t);
        // As vLLM: the last token's event carries finish_reason.
        upTo(t.outputTokens - 1);
        write(streamChunk(ctx, filler.text(t.outputTokens - 1, t.outputTokens), { finish: "length" }));
        if (gen.includeUsage) write(usageChunk(ctx, usageOf(t)));
        write(SSE_DONE);
        res.end();
      },
    });
  }

  const promptContext = { tokenizer: o.tokenizer, served, limits: o.limits, maxModelLen: o.engine.totalBlocks * o.engine.blockSize };

  const server: Server = createServer((req, res) => {
    const arrivedMs = performance.now();
    res.setHeader("x-sim-replica", o.id);
    const path = (req.url ?? "/").split("?")[0];
    const route = `${req.method} ${path}`;
    const endpoint = ENDPOINTS.get(path);
    if (req.method === "POST" && endpoint) {
      generate(req, res, endpoint, path, arrivedMs).catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, errorBody(500, String(err)));
        else res.destroy();
      });
    } else if (req.method === "POST" && PROMPT_ENDPOINTS.has(path)) {
      readBody(req, o.limits.maxBodyBytes)
        .then((body) => promptEndpoint(path, body, promptContext))
        .then(
          (reply) => send(res, reply.status, reply.body as object),
          (err: unknown) => send(res, 500, errorBody(500, String(err))),
        );
    } else if (route === "GET /health") {
      send(res, 200, "", "text/plain");
    } else if (route === "GET /v1/models") {
      const card = (id: string) => ({ id, object: "model", created: started, owned_by: "vllm", root: o.model, parent: null, max_model_len: o.engine.totalBlocks * o.engine.blockSize });
      send(res, 200, { object: "list", data: [...served].map(card) });
    } else if (route === "GET /metrics") {
      send(res, 200, metrics.render(o.model, engine.metrics(), o.engine), "text/plain; version=0.0.4; charset=utf-8");
    } else if (route === "POST /reset_prefix_cache") {
      req.resume();
      if (!engine.resetPrefixCache()) return send(res, 400, errorBody(400, "cannot reset the prefix cache while requests run"));
      driver.poke(); // forward the AllBlocksCleared event now
      send(res, 200, "", "text/plain");
    } else {
      req.resume();
      send(res, 404, errorBody(404, `no route for ${route}`));
    }
  });

  const [host, port] = splitHostPort(o.listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    id: o.id,
    port: bound,
    address: `${host}:${bound}`,
    engine,
    driver,
    addKvSink: (sink) => driver.addKvSink(sink),
    close: async () => {
      driver.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The body, read up to one byte past `max` (parseOpenAiBody then reports it as too large). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      if (size > max) return;
      size += c.length;
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/**
 * Simulator-only request field `sim_output_ids`: the token ids to "generate" (a benchmark's
 * scripted reply, so the next turn's history matches what was cached). Ignored when malformed.
 */
function simOutputIds(body: Record<string, unknown>, maxTokens: number): Uint32Array | undefined {
  const ids = body.sim_output_ids;
  if (!Array.isArray(ids) || ids.length < maxTokens || !ids.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) return undefined;
  return Uint32Array.from(ids.slice(0, maxTokens) as number[]);
}
