/**
 * Client strings never reach upstream headers or logs unbounded: the router sets only header values
 * it made itself (configured names, codes, numbers), and every log field is cut short.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRouterService, type RouterService } from "../src/router-service";
import { createLogger } from "../src/telemetry/logger";
import { EnvoyExtProcClient } from "./support/envoy-ext-proc-client";
import { chatBody, testConfig } from "./support/router-fixture";

/** 100 KB of text with the characters that break a header: CR LF, NUL, and Ċ/Ċ, which latin1 turns into CR LF. */
const HOSTILE = ("evil\r\nx-injected: 1\u0000\u010d\u010a" + "m".repeat(1000)).repeat(100);
const HEADER_SAFE = /^[\x20-\x7e]{0,256}$/;

describe("hostile client strings", () => {
  let service: RouterService;
  let client: EnvoyExtProcClient;
  const lines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
        done();
      },
    });
    const config = testConfig({ log: { level: "debug" } });
    service = await startRouterService(config, { logger: createLogger("debug", sink) });
    client = new EnvoyExtProcClient(service.extProc.address);
  });
  afterAll(async () => {
    client.close();
    await service.close();
  });

  it.each(["buffered", "full-duplex-streamed"] as const)("%s: an unknown 100 KB model name with CR LF, NUL and Ċ/Ċ never becomes a header value", async (mode) => {
    const ex = await client.process({ path: "/v1/chat/completions", body: chatBody("sys", "hi", HOSTILE), mode });
    expect(ex.protocolError).toBeNull();
    expect(ex.upstreamHeaders.get("x-prefix-router-reason")).toBe("unknown-model");
    expect(ex.upstreamHeaders.has("x-prefix-router-model")).toBe(false);
    expect(ex.upstreamHeaders.has("x-injected")).toBe(false);
    for (const response of ex.responses) {
      const common = response.request_headers?.response ?? response.request_body?.response;
      for (const set of common?.header_mutation?.set_headers ?? []) expect(set.header.raw_value?.toString("latin1")).toMatch(HEADER_SAFE);
    }
    await ex.complete(200);
  });

  it("a configured model's name is the header value, whatever the client sent around it", async () => {
    const ex = await client.process({ path: "/v1/chat/completions", body: chatBody("sys", "hi", "qwen3") });
    expect(ex.upstreamHeaders.get("x-prefix-router-model")).toBe("qwen3");
    await ex.complete(200);
  });

  it("log lines stay short when the request id, path and failure detail carry 100 KB of client text", async () => {
    lines.length = 0;
    const hostileHeaders = { "x-request-id": HOSTILE.replace(/[\r\n\u0000]/g, " ") };
    const requests = [
      client.process({ path: `/v1/chat/completions?q=${"p".repeat(100_000)}`, body: chatBody("sys", "hi"), headers: hostileHeaders }),
      client.process({
        path: "/v1/chat/completions",
        body: JSON.stringify({ model: "qwen3", messages: [{ role: "user", content: [{ type: HOSTILE }] }] }),
        headers: hostileHeaders,
      }),
      client.process({ path: "/v1/chat/completions", body: chatBody("sys", "hi", HOSTILE), headers: hostileHeaders }),
    ];
    for (const ex of await Promise.all(requests)) await ex.complete(200);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const streamLines = lines.filter((l) => l.includes('"requestId"'));
    expect(streamLines.length).toBe(3);
    for (const line of lines) expect(line.length).toBeLessThan(8 * 1024);
    expect(streamLines.some((l) => l.includes("unsupported content part type"))).toBe(true);
  });
});
