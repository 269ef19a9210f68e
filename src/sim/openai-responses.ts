/**
 * OpenAI-compatible response bodies as vLLM's server shapes them (vllm/entrypoints/openai): full
 * responses, SSE chunks, usage with prompt_tokens_details.cached_tokens, and vLLM's error body.
 * Also the few request fields the simulator needs beyond the prompt (max_tokens, stream, n).
 */
import type { RequestTiming } from "./replica-model";

export type Endpoint = "chat" | "completions";

export interface ResponseContext {
  readonly endpoint: Endpoint;
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
}

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
  readonly prompt_tokens_details: { readonly cached_tokens: number };
  readonly sim_timing?: { readonly ttft_ms: number; readonly e2e_ms: number };
}

export interface GenerationOptions {
  readonly maxTokens: number;
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

export const DEFAULT_MAX_TOKENS = 16;

/** The generation fields of a request body already parsed as JSON; a string names what is wrong. */
export function generationOptions(json: Record<string, unknown>, endpoint: Endpoint): GenerationOptions | string {
  const raw = endpoint === "chat" ? (json.max_completion_tokens ?? json.max_tokens) : json.max_tokens;
  const maxTokens = raw ?? DEFAULT_MAX_TOKENS;
  if (typeof maxTokens !== "number" || !Number.isInteger(maxTokens) || maxTokens < 1) return `max_tokens must be a positive integer, got ${JSON.stringify(raw)}`;
  if (json.n != null && json.n !== 1) return "the simulator supports n = 1 only";
  const stream = json.stream === true;
  const options = json.stream_options as { include_usage?: unknown } | null | undefined;
  return { maxTokens, stream, includeUsage: stream && options?.include_usage === true };
}

export function usageOf(t: Pick<RequestTiming, "promptTokens" | "cachedTokens" | "outputTokens"> & Partial<Pick<RequestTiming, "arrivalMs" | "firstTokenMs" | "finishMs">>): Usage {
  return {
    prompt_tokens: t.promptTokens,
    completion_tokens: t.outputTokens,
    total_tokens: t.promptTokens + t.outputTokens,
    prompt_tokens_details: { cached_tokens: t.cachedTokens },
    // Simulator-only: the request's timing in model time (the cost model's ms, not scaled wall
    // time), so a benchmark can report TTFT without the time-scale factor inflating HTTP overhead.
    ...(t.arrivalMs !== undefined && t.firstTokenMs !== undefined && t.finishMs !== undefined
      ? { sim_timing: { ttft_ms: t.firstTokenMs - t.arrivalMs, e2e_ms: t.finishMs - t.arrivalMs } }
      : {}),
  };
}

export function fullResponse(ctx: ResponseContext, text: string, usage: Usage): object {
  const head = { id: ctx.id, created: ctx.created, model: ctx.model };
  return ctx.endpoint === "chat"
    ? { ...head, object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: "length" }], usage }
    : { ...head, object: "text_completion", choices: [{ index: 0, text, logprobs: null, finish_reason: "length" }], usage };
}

/** One SSE event with a content delta; `role` on the first chat chunk, `finish` on the last. */
export function streamChunk(ctx: ResponseContext, text: string, opts: { role?: boolean; finish?: string } = {}): string {
  const finish = opts.finish ?? null;
  const choice =
    ctx.endpoint === "chat"
      ? { index: 0, delta: opts.role ? { role: "assistant", content: text } : text || !finish ? { content: text } : {}, logprobs: null, finish_reason: finish }
      : { index: 0, text, logprobs: null, finish_reason: finish };
  return sse({ id: ctx.id, object: ctx.endpoint === "chat" ? "chat.completion.chunk" : "text_completion", created: ctx.created, model: ctx.model, choices: [choice] });
}

/** The usage chunk of stream_options.include_usage: no choices. */
export function usageChunk(ctx: ResponseContext, usage: Usage): string {
  return sse({ id: ctx.id, object: ctx.endpoint === "chat" ? "chat.completion.chunk" : "text_completion", created: ctx.created, model: ctx.model, choices: [], usage });
}

export const SSE_DONE = "data: [DONE]\n\n";

/** vLLM's (0.32) error body, OpenAI-style. */
export function errorBody(status: number, message: string): object {
  const type = status === 404 ? "NotFoundError" : status >= 500 ? "InternalServerError" : "BadRequestError";
  return { error: { message, type, param: null, code: status } };
}

function sse(body: object): string {
  return `data: ${JSON.stringify(body)}\n\n`;
}
