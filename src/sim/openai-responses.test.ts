import { describe, expect, it } from "vitest";
import { generationOptions, streamChunk, usageOf } from "./openai-responses";

describe("generationOptions", () => {
  it.each([
    { body: {}, endpoint: "chat" as const, want: { maxTokens: 16, stream: false, includeUsage: false } },
    { body: { max_tokens: 5, max_completion_tokens: 7 }, endpoint: "chat" as const, want: { maxTokens: 7, stream: false, includeUsage: false } },
    { body: { max_tokens: 5, stream: true, stream_options: { include_usage: true } }, endpoint: "completions" as const, want: { maxTokens: 5, stream: true, includeUsage: true } },
    { body: { max_tokens: null, stream_options: { include_usage: true } }, endpoint: "completions" as const, want: { maxTokens: 16, stream: false, includeUsage: false } },
    { body: { max_tokens: 0 }, endpoint: "chat" as const, want: "max_tokens must be a positive integer, got 0" },
    { body: { max_tokens: 1.5 }, endpoint: "completions" as const, want: "max_tokens must be a positive integer, got 1.5" },
    { body: { n: 2 }, endpoint: "chat" as const, want: "the simulator supports n = 1 only" },
  ])("$body on $endpoint", ({ body, endpoint, want }) => {
    expect(generationOptions(body, endpoint)).toEqual(want);
  });
});

describe("response shapes", () => {
  const ctx = { endpoint: "chat" as const, id: "chatcmpl-1", created: 1, model: "m" };
  it("usage carries vLLM's prompt_tokens_details.cached_tokens", () => {
    expect(usageOf({ promptTokens: 100, cachedTokens: 96, outputTokens: 4 })).toEqual({ prompt_tokens: 100, completion_tokens: 4, total_tokens: 104, prompt_tokens_details: { cached_tokens: 96 } });
  });
  it.each([
    { opts: { role: true }, text: "", delta: { role: "assistant", content: "" }, finish: null },
    { opts: {}, text: " the", delta: { content: " the" }, finish: null },
    { opts: { finish: "length" }, text: "", delta: {}, finish: "length" },
  ])("chat chunk $opts", ({ opts, text, delta, finish }) => {
    const chunk = streamChunk(ctx, text, opts);
    expect(chunk.endsWith("\n\n")).toBe(true);
    const body = JSON.parse(chunk.slice("data: ".length)) as { object: string; choices: { delta: unknown; finish_reason: unknown }[] };
    expect(body.object).toBe("chat.completion.chunk");
    expect(body.choices[0]).toMatchObject({ delta, finish_reason: finish });
  });
});
