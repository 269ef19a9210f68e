/**
 * OpenAI-style request body → Prompt, the first step of the hot path. Never throws: every way a body
 * can be unusable is a Failure value (src/failure.ts), checked cheapest first —
 * path → size (before decoding) → UTF-8 → JSON → object → model → per-endpoint fields.
 * Chat bodies are parsed as vLLM parses them (parse-chat.ts, chat-messages.ts), completions in
 * parse-completion.ts.
 */
import { fail, type Outcome } from "../failure";
import type { BodyPrefixMemo } from "./body-prefix-memo";
import type { Prompt } from "./prompt";
import { field, invalid, isNullish, isObject } from "./json-fields";
import { parseChatRequest } from "./parse-chat";
import { parseCompletionRequest } from "./parse-completion";

export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly maxMessages: number;
  readonly maxPromptChars: number;
}

type Endpoint = "chat" | "completions";

const ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map([
  ["/v1/chat/completions", "chat"],
  ["/v1/completions", "completions"],
]);

// fatal: malformed bytes throw instead of becoming U+FFFD, which would change the tokens.
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * `memo`: chat bodies that repeat a remembered body's bytes up to one of its messages are parsed
 * from there on only (body-prefix-memo.ts; a tokenizer thread's), and every chat body is remembered.
 */
export function parseOpenAiBody(path: string, body: Buffer, limits: BodyLimits, memo?: BodyPrefixMemo): Outcome<Prompt> {
  const query = path.indexOf("?");
  const endpoint = ENDPOINTS.get(query < 0 ? path : path.slice(0, query));
  if (endpoint === undefined) return fail("unsupported-path", `no prompt parser for ${path.slice(0, 200)}`);
  if (body.length > limits.maxBodyBytes) {
    return fail("body-too-large", `${body.length} bytes, limit ${limits.maxBodyBytes}`);
  }
  const reused = endpoint === "chat" ? memo?.parse(body) : undefined;
  let json: unknown = reused?.json;
  if (reused === undefined) {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return fail("invalid-utf8", "body is not valid UTF-8");
    }
    try {
      json = JSON.parse(text);
    } catch (err) {
      return fail("invalid-json", err instanceof Error ? err.message : "body is not JSON");
    }
  }
  if (!isObject(json)) return invalid("body", "expected a JSON object");
  if (endpoint === "chat") memo?.remember(body, json);
  const model = field(json, "model");
  if (isNullish(model) || model === "") return fail("no-model", "the body names no model");
  if (typeof model !== "string") return invalid("model", "expected string");
  const prompt: Outcome<Prompt> = endpoint === "chat" ? parseChatRequest(json, model, limits) : parseCompletionRequest(json, model, limits.maxPromptChars);
  return prompt.ok && field(json, "stream") === true ? { ok: true, value: { ...prompt.value, stream: true } } : prompt;
}

