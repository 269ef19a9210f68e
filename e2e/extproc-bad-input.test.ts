/**
 * Bad input never fails user traffic: every malformed request still gets a routing answer (the
 * fallback policy, with a reason header) and the server keeps answering afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatBody, startTestRouter, type RunningRouter } from "./support/router-fixture";

const MiB = 1024 * 1024;

const cases: { name: string; path?: string; body: () => Buffer | string; reason: string }[] = [
  { name: "malformed JSON", body: () => '{"model": "qwen3", "messages": [', reason: "invalid-json" },
  { name: "an empty body", body: () => "", reason: "invalid-json" },
  { name: "a JSON array instead of an object", body: () => "[1,2,3]", reason: "invalid-request" },
  { name: "messages of the wrong type", body: () => JSON.stringify({ model: "qwen3", messages: "hello" }), reason: "invalid-request" },
  { name: "no model", body: () => JSON.stringify({ messages: [{ role: "user", content: "hi" }] }), reason: "no-model" },
  { name: "an unknown model", body: () => chatBody("sys", "hi", "gpt-17"), reason: "unknown-model" },
  {
    name: "invalid UTF-8",
    body: () => Buffer.concat([Buffer.from('{"model":"qwen3","messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]}')]),
    reason: "invalid-utf8",
  },
  { name: "a 5 MiB body", body: () => chatBody("sys", "x".repeat(5 * MiB)), reason: "prompt-too-long" },
  {
    name: "a 200k-message chat",
    body: () => JSON.stringify({ model: "qwen3", messages: Array.from({ length: 200_000 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: "hi" })) }),
    reason: "too-many-messages",
  },
  {
    name: "a 7 MB tool definition",
    body: () => JSON.stringify({ model: "qwen3", messages: [{ role: "user", content: "hi" }], tools: [{ type: "function", function: { name: "f", description: "t".repeat(7_000_000) } }] }),
    reason: "prompt-too-long",
  },
  { name: "an unsupported path", path: "/v1/embeddings", body: () => JSON.stringify({ model: "qwen3", input: "hi" }), reason: "unsupported-path" },
];

describe("bad input still gets routed", () => {
  let r: RunningRouter;
  beforeAll(async () => {
    r = await startTestRouter();
  });
  afterAll(async () => r.stop());

  describe.each(["buffered", "full-duplex-streamed"] as const)("%s", (mode) => {
    it.each(cases)("$name → fallback ($reason)", async ({ path, body, reason }) => {
      const payload = body();
      const ex = await r.client.process({ path: path ?? "/v1/chat/completions", body: payload, mode, chunkBytes: 256 * 1024 });
      expect(ex.immediateResponse).toBeUndefined();
      expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toBe("fallback");
      expect(ex.upstreamHeaders.get("x-prefix-router-reason")).toBe(reason);
      expect(ex.upstreamHeaders.get("x-gateway-destination-endpoint")).toMatch(/^10\.0\.0\.[1-4]:8000$/);
      if (mode === "full-duplex-streamed") expect(ex.upstreamBody.equals(Buffer.isBuffer(payload) ? payload : Buffer.from(payload))).toBe(true);
      await ex.complete(200);
    });

    it("keeps answering normal requests afterwards", async () => {
      const ex = await r.client.process({ path: "/v1/chat/completions", body: chatBody("after the storm", "hi"), mode });
      expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toMatch(/^(hit|miss)$/);
      await ex.complete(200);
    });
  });

  it("routes a 7 MB tool definition by the fallback without rendering or tokenizing it", async () => {
    const jobs = () => {
      const s = r.service.tokenizers.stats();
      return s.segmentHits + s.segmentMisses;
    };
    const before = jobs();
    const tools = [{ type: "function", function: { name: "f", description: "u".repeat(7_000_000) } }];
    const ex = await r.client.process({ path: "/v1/chat/completions", body: JSON.stringify({ model: "qwen3", messages: [{ role: "user", content: "hi" }], tools }) });
    expect(ex.upstreamHeaders.get("x-prefix-router-reason")).toBe("prompt-too-long");
    await ex.complete(200);
    // A request that reached a tokenizer thread would have counted a segment hit or miss.
    expect(jobs()).toBe(before);
  });

  it("falls back when tokenizing takes longer than routing.decisionTimeoutMs", async () => {
    const hasty = await startTestRouter((await import("./support/router-fixture")).testConfig({ routing: { decisionTimeoutMs: 1 } }));
    try {
      const ex = await hasty.client.process({ path: "/v1/chat/completions", body: chatBody("z".repeat(200_000) + Math.random(), "hi") });
      expect(ex.upstreamHeaders.get("x-prefix-router-decision")).toBe("fallback");
      expect(ex.upstreamHeaders.get("x-prefix-router-reason")).toBe("decision-timeout");
      await ex.complete(200);
    } finally {
      await hasty.stop();
    }
  });

  it("routes early and streams through a full-duplex body larger than limits.maxBodyBytes", async () => {
    const small = await startTestRouter((await import("./support/router-fixture")).testConfig({ limits: { maxBodyBytes: 256 * 1024 } }));
    try {
      const payload = Buffer.from(chatBody("sys", "y".repeat(1 * MiB)));
      const ex = await small.client.process({ path: "/v1/chat/completions", body: payload, mode: "full-duplex-streamed", chunkBytes: 64 * 1024 });
      expect(ex.upstreamHeaders.get("x-prefix-router-reason")).toBe("body-too-large");
      expect(ex.upstreamBody.equals(payload)).toBe(true);
      await ex.complete(200);
    } finally {
      await small.stop();
    }
  });
});
