/**
 * In-process fuzzing of the ext_proc stream state machine (ProcessStream) in front of the real
 * request path (RequestRouter: body parser, chat template, tokenizer, block keys, memory map,
 * policy), on a fake gRPC call — tens of thousands of cases a second where a real stream costs a
 * round trip. Per case, the property (fast-check, seeded; a failure prints the seed and the
 * shrunk case):
 *   - no handler throws (a stream ends "error" only after a message with no known request field,
 *     which the router answers by closing the stream),
 *   - the stream is routed at most once,
 *   - a well-formed sequence (headers, then the body to its end) gets a routing answer — a pick
 *     (fallback allowed) or an ImmediateResponse,
 *   - once the stream ended, every worker's in-flight count is back to zero.
 */
import { EventEmitter } from "node:events";
import fc from "fast-check";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { ProcessStream } from "../../../src/extproc/process-stream";
import type { ProcessingRequest, ProcessingResponse } from "../../../src/extproc/messages";
import type { StreamOutcome } from "../../../src/extproc/stream-outcome";
import { RequestRouter } from "../../../src/router/request-router";
import type { RouteRequest, RouteResult } from "../../../src/router/route-result";
import { MemoryCacheIndex } from "../../../src/state/memory-cache-index";
import { PromptKeyer } from "../../../src/tokenize/prompt-keyer";
import { mainThreadTokenizers, testConfig } from "../../support/router-fixture";
import { streamCase, type StreamCase } from "./arbitraries";

/** The oneof name proto-loader sets on a decoded ProcessingRequest. */
const KINDS = ["request_headers", "response_headers", "request_body", "response_body", "request_trailers", "response_trailers"] as const;
function decoded(m: ProcessingRequest): ProcessingRequest {
  const kind = KINDS.find((k) => m[k] !== undefined);
  return kind ? { ...m, request: kind } : { ...m };
}

/** Just enough of a grpc-js ServerDuplexStream for ProcessStream. */
class FakeCall extends EventEmitter {
  readonly written: ProcessingResponse[] = [];
  writableEnded = false;
  write(r: ProcessingResponse): boolean {
    this.written.push(r);
    return true;
  }
  end(): void {
    if (this.writableEnded) return;
    this.writableEnded = true;
    setImmediate(() => this.emit("close"));
  }
}

export interface InProcessFigures {
  readonly cases: number;
  readonly seconds: number;
  readonly wellFormed: number;
  readonly routed: number;
  readonly rejected: number;
  readonly endedWithError: number;
  readonly fallbackReasons: Record<string, number>;
}

function isRouting(r: ProcessingResponse): boolean {
  if (r.immediate_response) return true;
  const common = r.request_headers?.response ?? r.request_body?.response;
  return !!common?.header_mutation?.set_headers?.some((h) => h.header.key === "x-gateway-destination-endpoint");
}

export async function fuzzInProcess(seed: number, numRuns: number): Promise<InProcessFigures> {
  const config = testConfig({ routing: { decisionTimeoutMs: 2_000, load: { scrapeMetrics: false } } });
  const registry = await mainThreadTokenizers(config);
  const router = new RequestRouter({ config, index: new MemoryCacheIndex({ maxEntries: 200_000 }), tokenizers: new PromptKeyer(registry, 8 << 20) });
  const figures = { cases: 0, wellFormed: 0, routed: 0, rejected: 0, endedWithError: 0, fallbackReasons: {} as Record<string, number> };
  const t0 = performance.now();

  const runCase = async (c: StreamCase): Promise<void> => {
    figures.cases++;
    const inFlight = () => config.workers.map((w) => router.inFlight.inFlight(w.id));
    const before = inFlight();
    // Decisions of this stream, awaited before the counts are read: a stream reset while its
    // decision runs releases the pick when the decision returns, after the stream ended.
    const deciding: Promise<RouteResult>[] = [];
    const call = new FakeCall();
    let routes = 0;
    let outcome: StreamOutcome | null = null;
    const ended = new Promise<void>((resolve) => {
      new ProcessStream(call as unknown as ServerDuplexStream<ProcessingRequest, ProcessingResponse>, {
        route: async (request: RouteRequest): Promise<RouteResult> => {
          routes++;
          const decision = router.route(request);
          deciding.push(decision);
          const result = await decision;
          if (result.kind === "route" && result.outcome === "fallback") figures.fallbackReasons[result.reason ?? "?"] = (figures.fallbackReasons[result.reason ?? "?"] ?? 0) + 1;
          if (result.kind === "reject") figures.rejected++;
          else figures.routed++;
          return result;
        },
        bodyMode: "auto",
        debugHeaders: true,
        fallbackEndpoints: 1,
        maxBodyBytes: 1 << 20,
        onEnd: (o) => {
          outcome = o;
          resolve();
        },
      });
    });
    let unknownMessage = false;
    for (const step of c.steps) {
      if (step.kind === "pause") await new Promise((r) => setImmediate(r));
      else {
        const m = decoded(step.message);
        if (m.request === undefined && !m.observability_mode) unknownMessage = true;
        call.emit("data", m);
      }
    }
    // Let the stream answer what it got before the client leaves (Envoy waits for answers).
    for (let i = 0; i < 50 && c.wellFormed && !call.written.some(isRouting) && !call.writableEnded; i++) await new Promise((r) => setTimeout(r, 1));
    if (c.end === "cancel") {
      call.emit("cancelled");
      call.emit("close");
    } else {
      call.emit("end");
    }
    await ended;
    await Promise.allSettled(deciding);
    await new Promise((r) => setImmediate(r));
    const o = outcome as unknown as StreamOutcome;
    if (o.end === "error") figures.endedWithError++;
    if (o.end === "error" && !unknownMessage) throw new Error(`a handler threw: ${o.error}`);
    if (routes > 1) throw new Error(`the stream was routed ${routes} times`);
    if (c.wellFormed) {
      figures.wellFormed++;
      if (!call.written.some(isRouting)) throw new Error(`a well-formed sequence got no routing answer; answers: ${JSON.stringify(call.written.map((r) => Object.keys(r)))}`);
    }
    const after = inFlight();
    if (after.some((n, i) => n !== before[i])) throw new Error(`in-flight counts not released after the stream ended: ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
  };

  await fc.assert(fc.asyncProperty(streamCase, runCase), { seed, numRuns, endOnFailure: false });
  return { ...figures, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)) };
}
