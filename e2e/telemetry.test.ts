/**
 * What operators see: Prometheus metrics on the admin port, OpenTelemetry spans for every decision
 * (W3C traceparent honoured and propagated), gRPC health on both ports, optional reflection.
 */
import { credentials, loadPackageDefinition, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRouterService } from "../src/router-service";
import { silentLogger } from "../src/telemetry/logger";
import { chainOf } from "../src/state/cache-index.contract";
import { EnvoyExtProcClient } from "./support/envoy-ext-proc-client";
import { IngestTestClient, withIngestTokens } from "./support/ingest-client";
import { chatBody, testConfig } from "./support/router-fixture";

const exporter = new InMemorySpanExporter();

function config(reflection = false) {
  const base = testConfig();
  return testConfig({
    extProc: { listen: "127.0.0.1:0", reflection },
    workers: withIngestTokens(base.workers),
    ingest: { listen: "127.0.0.1:0" },
    admin: { listen: "127.0.0.1:0" },
  });
}

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one series, e.g. value(text, 'prefix_router_decisions_total{outcome="miss",reason=""}'). */
function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.slice(series.length + 1)) : NaN;
}

describe("telemetry", () => {
  let service: Awaited<ReturnType<typeof startRouterService>>;
  let envoy: EnvoyExtProcClient;
  beforeAll(async () => {
    service = await startRouterService(config(), { logger: silentLogger, traceProcessors: [new SimpleSpanProcessor(exporter)] });
    envoy = new EnvoyExtProcClient(service.extProc.address);
  });
  afterAll(async () => {
    envoy.close();
    await service.close();
  });

  it("exposes decisions, latency, blocks, load, candidacy, ingest, store and tokenizer metrics", async () => {
    const body = chatBody("metrics system prompt " + "lorem ipsum ".repeat(200), "hi");
    for (let i = 0; i < 3; i++) {
      const ex = await envoy.process({ path: "/v1/chat/completions", body });
      await ex.complete(200);
    }
    const bad = await envoy.process({ path: "/v1/chat/completions", body: "{not json" });
    await bad.complete(200);
    const ingest = new IngestTestClient(service.ingest!.server.address);
    await ingest.push({ worker: "w2", seq: 1, events: [{ stored: chainOf(3, "metrics") }] });
    await ingest.push({ worker: "w2", seq: 3 }).catch(() => undefined); // a gap
    await ingest.push({ worker: "w2", seq: 1, token: null }).catch(() => undefined); // unauthenticated
    ingest.close();
    await new Promise((r) => setTimeout(r, 100));

    const text = await scrape(service.admin!.port);
    expect(value(text, 'prefix_router_decisions_total{outcome="miss",reason=""}')).toBe(1);
    expect(value(text, 'prefix_router_decisions_total{outcome="hit",reason=""}')).toBe(2);
    expect(value(text, 'prefix_router_decisions_total{outcome="fallback",reason="invalid-json"}')).toBe(1);
    expect(value(text, 'prefix_router_decision_duration_seconds_count{outcome="hit"}')).toBe(2);
    expect(value(text, 'prefix_router_prompt_blocks_count{outcome="hit"}')).toBe(2);
    expect(value(text, 'prefix_router_matched_blocks_sum{outcome="hit"}')).toBeGreaterThan(20);
    expect(value(text, 'prefix_router_extproc_streams_total{end="completed"}')).toBe(4);
    expect(value(text, 'prefix_router_worker_in_flight{worker="w1"}')).toBe(0);
    expect(value(text, 'prefix_router_worker_candidate{worker="w3"}')).toBe(1);
    expect(value(text, 'prefix_router_ingest_total{what="batches"}')).toBe(1);
    expect(value(text, 'prefix_router_ingest_total{what="keys"}')).toBe(3);
    expect(value(text, 'prefix_router_ingest_total{what="gaps"}')).toBe(1);
    expect(value(text, 'prefix_router_ingest_rejections_total{code="unauthenticated"}')).toBe(1);
    expect(value(text, 'prefix_router_index_blocks{worker="w2",kind="confirmed"}')).toBe(3);
    expect(value(text, 'prefix_router_store_duration_seconds_count{op="lookup"}')).toBe(3);
    expect(value(text, 'prefix_router_store_errors_total{op="lookup"}') || 0).toBe(0);
    expect(value(text, 'prefix_router_tokenizer_segments_total{result="hit"}')).toBeGreaterThan(0);
    expect(value(text, "prefix_router_tokenizer_cache_bytes")).toBeGreaterThan(0);
    // Bodies this small are parsed on the event loop: no tokenizer thread reused a body's bytes.
    expect(value(text, "prefix_router_tokenizer_body_bytes_reused_total")).toBe(0);
    // A second scrape keeps counters monotonic (mirrored, not reset).
    expect(value(await scrape(service.admin!.port), 'prefix_router_ingest_total{what="batches"}')).toBe(1);
  });

  it("traces one span per decision with a child per stage, under the caller's traceparent, and propagates it", async () => {
    exporter.reset();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentSpan = "00f067aa0ba902b7";
    const ex = await envoy.process({
      path: "/v1/chat/completions",
      body: chatBody("tracing prompt " + "x ".repeat(100), "hi"),
      headers: { traceparent: `00-${traceId}-${parentSpan}-01` },
    });
    const upstream = ex.upstreamHeaders.get("traceparent")!;
    await ex.complete(200);
    const spans = exporter.getFinishedSpans();
    const decision = spans.find((s) => s.name === "prefix_router.decide")!;
    expect(decision.spanContext().traceId).toBe(traceId);
    expect(decision.parentSpanContext?.spanId).toBe(parentSpan);
    expect(decision.attributes["prefix_router.outcome"]).toBe("miss");
    const stages = spans.filter((s) => s.parentSpanContext?.spanId === decision.spanContext().spanId).map((s) => s.name);
    expect(stages.sort()).toEqual(["prefix_router.hash", "prefix_router.lookup", "prefix_router.parse", "prefix_router.pick", "prefix_router.template", "prefix_router.tokenize"].sort());
    expect(upstream).toBe(`00-${traceId}-${decision.spanContext().spanId}-01`);
  });

  it("starts a new trace when the request carries none", async () => {
    exporter.reset();
    const ex = await envoy.process({ path: "/v1/chat/completions", body: chatBody("no parent", "hi") });
    await ex.complete(200);
    const decision = exporter.getFinishedSpans().find((s) => s.name === "prefix_router.decide")!;
    expect(decision.parentSpanContext).toBeUndefined();
    expect(ex.upstreamHeaders.get("traceparent")).toContain(decision.spanContext().traceId);
  });

  it("serves grpc.health.v1 on the ext_proc and ingest ports", async () => {
    const def = loadSync(healthProtoPath, { keepCase: true, enums: String });
    const Health = (loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: new (a: string, c: unknown) => { Check(r: object, cb: (e: ServiceError | null, r?: { status: string }) => void): void; close(): void } } } } }).grpc.health.v1.Health;
    for (const [address, svc] of [
      [service.extProc.address, "envoy.service.ext_proc.v3.ExternalProcessor"],
      [service.ingest!.server.address, "prefix_router.ingest.v1.KvIngest"],
    ] as const) {
      const client = new Health(address, credentials.createInsecure());
      for (const name of ["", svc]) {
        const reply = await new Promise<{ status: string }>((resolve, reject) => client.Check({ service: name }, (e, r) => (e ? reject(e) : resolve(r!))));
        expect(reply.status).toBe("SERVING");
      }
      client.close();
    }
  });
});

describe("gRPC reflection", () => {
  it.each([true, false])("is served only when configured (reflection: %s)", async (reflection) => {
    const service = await startRouterService(config(reflection), { logger: silentLogger });
    try {
      const protoPath = require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto");
      const def = loadSync(protoPath, { keepCase: true });
      const Reflection = (loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1alpha: { ServerReflection: new (a: string, c: unknown) => { ServerReflectionInfo(): NodeJS.EventEmitter & { write(m: object): void; end(): void }; close(): void } } } } }).grpc.reflection.v1alpha.ServerReflection;
      const client = new Reflection(service.extProc.address, credentials.createInsecure());
      const call = client.ServerReflectionInfo();
      const answer = await new Promise<{ ok: boolean; services: string[] }>((resolve) => {
        call.on("data", (m: { list_services_response?: { service: { name: string }[] } }) => resolve({ ok: true, services: m.list_services_response?.service.map((s) => s.name) ?? [] }));
        call.on("error", () => resolve({ ok: false, services: [] }));
        call.write({ list_services: "*" });
      });
      call.end();
      client.close();
      expect(answer.ok).toBe(reflection);
      if (reflection) expect(answer.services).toContain("envoy.service.ext_proc.v3.ExternalProcessor");
    } finally {
      await service.close();
    }
  });
});
