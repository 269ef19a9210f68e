/**
 * OpenTelemetry tracing of decisions: one span per decision ("prefix_router.decide") with a child
 * span per stage (parse, template, tokenize, hash, lookup, pick). A W3C `traceparent` on the
 * request makes the decision a child of the caller's trace, and the decision span's context is
 * propagated upstream (the request reaches vLLM with a traceparent whose parent is our span).
 * Off by default; OTLP/HTTP export when `tracing.otlpEndpoint` is set.
 */
import { context, trace, SpanStatusCode, type Context, type Span, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor, TraceIdRatioBasedSampler, ParentBasedSampler, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import type { DecisionStages, StageName } from "../router/decision-stages";
import type { RouteRequest, RouteResult } from "../router/route-result";

export interface TracingOptions {
  readonly serviceName: string;
  readonly sampleRatio: number;
  /** OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. */
  readonly otlpEndpoint?: string;
  /** Extra processors (tests pass a SimpleSpanProcessor over an InMemorySpanExporter). */
  readonly processors?: readonly SpanProcessor[];
}

export interface DecisionTracing {
  /** Wraps a router's route() so every decision is traced. */
  wrap(route: (request: RouteRequest, stages: DecisionStages) => Promise<RouteResult>): (request: RouteRequest) => Promise<RouteResult>;
  shutdown(): Promise<void>;
}

const propagator = new W3CTraceContextPropagator();
const headerGetter = {
  keys: (carrier: ReadonlyMap<string, string>) => [...carrier.keys()],
  get: (carrier: ReadonlyMap<string, string>, key: string) => carrier.get(key.toLowerCase()),
};

export function createDecisionTracing(options: TracingOptions): DecisionTracing {
  const processors: SpanProcessor[] = [...(options.processors ?? [])];
  if (options.otlpEndpoint) processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: options.otlpEndpoint })));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) }),
    spanProcessors: processors,
  });
  const tracer = provider.getTracer("prefix-router");
  return {
    wrap: (route) => (request) => tracedDecision(tracer, route, request),
    shutdown: () => provider.shutdown(),
  };
}

async function tracedDecision(
  tracer: Tracer,
  route: (request: RouteRequest, stages: DecisionStages) => Promise<RouteResult>,
  request: RouteRequest,
): Promise<RouteResult> {
  const parent = request.headers ? propagator.extract(context.active(), request.headers, headerGetter) : context.active();
  const span = tracer.startSpan("prefix_router.decide", { attributes: { "http.request.method": request.method, "url.path": request.path } }, parent);
  const spanContext = trace.setSpan(parent, span);
  try {
    const result = await route(request, stageSpans(tracer, spanContext));
    annotate(span, result);
    if (result.kind !== "route" || !span.isRecording()) return result;
    const carrier: Record<string, string> = {};
    propagator.inject(spanContext, carrier, { set: (c, k, v) => (c[k] = v) });
    return { ...result, extraHeaders: [...(result.extraHeaders ?? []), ...Object.entries(carrier)] };
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw err;
  } finally {
    span.end();
  }
}

function stageSpans(tracer: Tracer, parent: Context): DecisionStages {
  return {
    run<T>(name: StageName, work: () => T): T {
      const span = tracer.startSpan(`prefix_router.${name}`, undefined, parent);
      let result: T;
      try {
        result = work();
      } catch (err) {
        span.recordException(err as Error);
        span.end();
        throw err;
      }
      if (result instanceof Promise) {
        result.then(
          () => span.end(),
          () => span.end(),
        );
      } else span.end();
      return result;
    },
    record(name: StageName, startMs: number, endMs: number): void {
      const origin = performance.timeOrigin;
      tracer.startSpan(`prefix_router.${name}`, { startTime: origin + startMs }, parent).end(origin + endMs);
    },
  };
}

function annotate(span: Span, result: RouteResult): void {
  if (result.kind === "reject") {
    span.setAttributes({ "prefix_router.outcome": "reject", "prefix_router.reason": result.reason });
    span.setStatus({ code: SpanStatusCode.ERROR, message: result.detail });
    return;
  }
  span.setAttributes({
    "prefix_router.outcome": result.outcome,
    "prefix_router.worker": result.worker.id,
    "prefix_router.matched_blocks": result.matchedBlocks,
    "prefix_router.total_blocks": result.totalBlocks,
    "prefix_router.candidates": result.candidates,
    ...(result.reason ? { "prefix_router.reason": result.reason } : {}),
    ...(result.model ? { "prefix_router.model": result.model } : {}),
  });
}
