/**
 * A body of 1 MiB or more is never decoded or parsed on the event loop: its bytes go to a tokenizer
 * thread, which parses them, resolves the model they name and keys the prompt (tokenizer-pool.ts
 * keysOfBody, request-router.ts planFromBody). Routed like any other request — the same keys as the
 * event-loop path, the same failure reasons, only configured model names in headers.
 */
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRouterService, type RouterService } from "../src/router-service";
import { silentLogger } from "../src/telemetry/logger";
import { EnvoyExtProcClient } from "./support/envoy-ext-proc-client";
import { chatBody, testConfig } from "./support/router-fixture";

const MiB = 1024 * 1024;
/** About 1.2 MB of text: over the pool's 1 MiB threshold, under the default limits. */
const bigSystem = (tag: string) => `${tag} `.padEnd(16, "-") + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(21_000);

const exporter = new InMemorySpanExporter();
let r: { service: RouterService; client: EnvoyExtProcClient };
beforeAll(async () => {
  const service = await startRouterService(testConfig(), { logger: silentLogger, traceProcessors: [new SimpleSpanProcessor(exporter)] });
  r = { service, client: new EnvoyExtProcClient(service.extProc.address) };
}, 60_000);
afterAll(async () => {
  r?.client.close();
  await r?.service.close();
});

/** The stages traced under the last decision span. */
function lastDecisionStages(): string[] {
  const spans = exporter.getFinishedSpans();
  const decision = spans.filter((s) => s.name === "prefix_router.decide").at(-1)!;
  return spans.filter((s) => s.parentSpanContext?.spanId === decision.spanContext().spanId).map((s) => s.name.replace("prefix_router.", "")).sort();
}

describe("a body of 1 MiB or more", () => {
  it("is routed by prefix with the keys the event-loop path gives (of its head), and a repeat hits the same worker", async () => {
    const body = Buffer.from(chatBody(bigSystem("doc-1"), "What is this about?"));
    expect(body.length).toBeGreaterThan(MiB);
    const first = await r.client.process({ path: "/v1/chat/completions", body });
    expect(first.upstreamHeaders.get("x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
    expect(first.upstreamHeaders.get("x-prefix-router-model")).toBe("qwen3");
    const worker = first.upstreamHeaders.get("x-gateway-destination-endpoint");
    await first.complete(200);
    // Parsed in the thread: no parse stage on the event loop; the thread's stages are replayed.
    expect(lastDecisionStages()).toEqual(["hash", "lookup", "pick", "template", "tokenize"]);
    const small = await r.client.process({ path: "/v1/chat/completions", body: chatBody("a small one", "hi") });
    await small.complete(200);
    expect(lastDecisionStages()).toEqual(["hash", "lookup", "parse", "pick", "template", "tokenize"]);

    // A new megabyte no worker holds: the thread keyed only its head (prompt-keyer.ts HeadProbe).
    expect(first.upstreamHeaders.get("x-prefix-router-keyed")).toBe("head");
    const headBlocks = Number(first.upstreamHeaders.get("x-prefix-router-blocks")!.split("/")[1]);
    expect(headBlocks).toBeGreaterThan(0);

    // explain() parses on the event loop and keys in process: its chain must start with the head
    // the thread keyed, which the route recorded speculatively on `worker` — every block of it —
    // and go on past it (the worker holds the whole head, so a longer head is keyed).
    const explained = await r.service.router.explain({ method: "POST", path: "/v1/chat/completions", body, subset: null });
    expect(explained.failure).toBeNull();
    expect(explained.keys.length).toBeGreaterThan(headBlocks);
    const holder = r.service.config.workers.find((w) => w.address === worker)!;
    expect(explained.runs.get(holder.id)).toBe(headBlocks);

    const again = await r.client.process({ path: "/v1/chat/completions", body: Buffer.from(chatBody(bigSystem("doc-1"), "And in one line?")) });
    expect(again.upstreamHeaders.get("x-prefix-router-decision")).toBe("hit");
    expect(again.upstreamHeaders.get("x-gateway-destination-endpoint")).toBe(worker);
    await again.complete(200);
  });

  it.each([
    { name: "malformed JSON", body: () => `{"model":"qwen3","messages":[{"role":"user","content":"${"x".repeat(MiB)}"`, reason: "invalid-json" },
    { name: "an unknown model", body: () => chatBody(bigSystem("doc-2"), "hi", "gpt-17"), reason: "unknown-model" },
    { name: "a 100 KB model name with CR LF", body: () => chatBody(bigSystem("doc-3"), "hi", "m\r\nx-evil: 1".repeat(8_000)), reason: "unknown-model" },
    { name: "invalid UTF-8", body: () => Buffer.concat([Buffer.from(chatBody(bigSystem("doc-4"), "hi")).subarray(0, MiB + 100), Buffer.from([0xc3, 0x28]), Buffer.from('"}]}')]), reason: "invalid-utf8" },
  ])("with $name falls back with reason $reason and no client string in a header", async ({ body, reason }) => {
    const payload = Buffer.from(body());
    expect(payload.length).toBeGreaterThan(MiB);
    const ex = await r.client.process({ path: "/v1/chat/completions", body: payload });
    expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toBe("fallback");
    expect(ex.upstreamHeaders.get("x-prefix-router-reason")).toBe(reason);
    expect(ex.upstreamHeaders.get("x-prefix-router-model") ?? null).toBeNull();
    for (const value of ex.upstreamHeaders.values()) expect(value.length).toBeLessThan(2_000);
    await ex.complete(200);
  });
});
