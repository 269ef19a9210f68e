/**
 * vLLM's prompt-only endpoints, which return a prompt's token ids without generating:
 *   POST /tokenize                     TokenizeResponse {count, max_model_len, tokens, token_strs}
 *   POST /v1/chat/completions/render   GenerateRequest  {request_id, token_ids, sampling_params, …}
 *   POST /v1/completions/render        [GenerateRequest]
 * (vllm/entrypoints/serve/tokenize, vllm/entrypoints/serve/render). Routers call them to route by
 * tokens: vllm-router's cache_aware renders each request on every worker (render first, /tokenize
 * when render is missing). vLLM tokenizes in its API server, not on the GPU, so these take no
 * engine time. Request defaults follow vLLM: a /tokenize body with `messages` is a chat (generation
 * prompt on, no extra special tokens), with `prompt` a completion (special tokens on) — the same
 * defaults as the generation endpoints, so the body parser serves both.
 */
import { randomUUID } from "node:crypto";
import { parseOpenAiBody, type BodyLimits } from "../request/parse-openai-body";
import type { ModelTokenizer } from "../tokenize/tokenizer-registry";
import { errorBody } from "./openai-responses";

export const PROMPT_ENDPOINTS: ReadonlySet<string> = new Set(["/tokenize", "/v1/chat/completions/render", "/v1/completions/render"]);

export interface PromptEndpointContext {
  readonly tokenizer: ModelTokenizer;
  readonly served: ReadonlySet<string>;
  readonly limits: BodyLimits;
  readonly maxModelLen: number;
}

export interface EndpointReply {
  readonly status: number;
  readonly body: unknown;
}

/** The reply of one prompt-only endpoint (`path` is one of PROMPT_ENDPOINTS). */
export async function promptEndpoint(path: string, body: Buffer, ctx: PromptEndpointContext): Promise<EndpointReply> {
  const parserPath = path === "/tokenize" ? (hasMessages(body) ? "/v1/chat/completions" : "/v1/completions") : path.slice(0, -"/render".length);
  const parsed = parseOpenAiBody(parserPath, body, ctx.limits);
  if (!parsed.ok) return { status: 400, body: errorBody(400, `${parsed.failure.code}: ${parsed.failure.detail}`) };
  const model = parsed.value.model;
  if (!ctx.served.has(model)) return { status: 404, body: errorBody(404, `The model \`${model}\` does not exist.`) };
  const ids = await ctx.tokenizer.tokenize(parsed.value);
  if (!ids.ok) return { status: 400, body: errorBody(400, `${ids.failure.code}: ${ids.failure.detail}`) };
  const tokens = Array.from(ids.value);
  if (path === "/tokenize") return { status: 200, body: { count: tokens.length, max_model_len: ctx.maxModelLen, tokens, token_strs: null } };
  const maxTokens = (JSON.parse(body.toString("utf8")) as { max_tokens?: unknown }).max_tokens;
  // sampling_params carries only max_tokens: the simulator has no sampler, routers read token_ids.
  const rendered = {
    request_id: randomUUID(),
    token_ids: tokens,
    features: null,
    sampling_params: { max_tokens: typeof maxTokens === "number" ? maxTokens : null },
    model,
    stream: false,
    stream_options: null,
    cache_salt: null,
    priority: 0,
    kv_transfer_params: null,
  };
  return { status: 200, body: path === "/v1/completions/render" ? [rendered] : rendered };
}

function hasMessages(body: Buffer): boolean {
  try {
    const json = JSON.parse(body.toString("utf8")) as unknown;
    return typeof json === "object" && json !== null && "messages" in json;
  } catch {
    return false; // the parser reports the bad JSON
  }
}
