/**
 * A real HTTP client for chats through Envoy: JSON or SSE, with the replica's record of what it
 * received (by the `x-test-id` header) attached.
 */
import { randomUUID } from "node:crypto";
import { TEST_ID_HEADER, type ReplicaSet, type Seen } from "./envoy-stack";

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

export interface ChatOptions {
  readonly messages: readonly ChatMessage[];
  readonly model?: string;
  readonly maxTokens?: number;
  readonly stream?: boolean;
  readonly headers?: Record<string, string>;
  /** A raw body instead of one built from the fields above. */
  readonly body?: string;
  /** Called when the response headers arrive, before the body is read. */
  readonly onHeaders?: (status: number) => void;
}

export interface SseEvent {
  readonly id?: string;
  readonly choices: { delta?: { role?: string; content?: string }; finish_reason: string | null }[];
  readonly usage?: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

export interface ChatResult {
  readonly status: number;
  readonly headers: Headers;
  /** Date.now() when the response headers arrived. */
  readonly headersAt: number;
  /** What the replica received, if the request reached one. */
  readonly seen: Seen | undefined;
  /** The assistant text: the message content, or the SSE deltas joined. */
  readonly content: string;
  /** SSE only: the parsed events (without [DONE]) and whether [DONE] ended the stream. */
  readonly events: readonly SseEvent[];
  readonly done: boolean;
  readonly raw: string;
  /** The response body broke off (reset, connection closed) after its headers arrived. */
  readonly bodyError: string | null;
}

export const chatBodyOf = (o: ChatOptions): string =>
  o.body ??
  JSON.stringify({
    model: o.model ?? "qwen3",
    messages: o.messages,
    max_tokens: o.maxTokens ?? 8,
    ...(o.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

export async function chat(url: string, replicas: ReplicaSet, o: ChatOptions): Promise<ChatResult> {
  const id = randomUUID();
  const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", [TEST_ID_HEADER]: id, ...o.headers }, body: chatBodyOf(o) });
  const headersAt = Date.now();
  o.onHeaders?.(res.status);
  let raw: string;
  try {
    raw = await res.text();
  } catch (err) {
    const cause = (err as Error).cause ?? err;
    return { status: res.status, headers: res.headers, headersAt, seen: replicas.seen.get(id), raw: "", content: "", events: [], done: false, bodyError: String(cause) };
  }
  const seen = replicas.seen.get(id);
  const head = { status: res.status, headers: res.headers, headersAt, seen, raw, bodyError: null };
  if (res.status !== 200) return { ...head, content: "", events: [], done: false };
  if (!o.stream) {
    const json = JSON.parse(raw) as { choices: { message: { content: string } }[] };
    return { ...head, content: json.choices[0].message.content, events: [], done: false };
  }
  const { events, done } = parseSse(raw);
  const content = events.map((e) => e.choices[0]?.delta?.content ?? "").join("");
  return { ...head, content, events, done };
}

/** SSE as vLLM writes it: `data: <json>` events separated by blank lines, `data: [DONE]` last. */
export function parseSse(raw: string): { events: SseEvent[]; done: boolean } {
  const blocks = raw.split("\n\n");
  if (blocks.at(-1) !== "") throw new Error(`SSE stream does not end with a blank line: ${JSON.stringify(raw.slice(-80))}`);
  const events: SseEvent[] = [];
  let done = false;
  for (const block of blocks.slice(0, -1)) {
    if (!block.startsWith("data: ")) throw new Error(`not an SSE data event: ${JSON.stringify(block.slice(0, 80))}`);
    if (done) throw new Error("an event after [DONE]");
    const data = block.slice("data: ".length);
    if (data === "[DONE]") done = true;
    else events.push(JSON.parse(data) as SseEvent);
  }
  return { events, done };
}

/** A system prompt long enough for many 16-token blocks, distinct per `topic`. */
export const systemPrompt = (topic: string): string =>
  Array.from({ length: 40 }, (_, i) => `Rule ${i + 1} about ${topic}: answer precisely, cite the section, and keep the tone friendly.`).join(" ");
