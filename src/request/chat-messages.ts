/**
 * Request `messages` → the conversation vLLM renders, following
 * vllm/renderers/chat_utils/parse_chat_message_content.py `_parse_chat_message_content` and
 * vllm/renderers/chat_utils/parse_chat_message.py `_postprocess_messages` (both formerly in
 * vllm/entrypoints/chat_utils.py), plus ChatCompletionRequest's `_normalize_messages_before`
 * (deprecated `reasoning_content` input is read as `reasoning`).
 *
 * Per message, keys in vLLM's order: role, content (see chat-content.ts), then
 *   assistant: tool_calls (when not null), reasoning + reasoning_content (when reasoning not null);
 *   tool: tool_call_id;
 *   any role: name (when a string), task (when a string); developer: tools (or null).
 * Post-processing of assistant tool_calls: an empty list is dropped; each call must be an object of
 * type "function" with a `function` object; `function.arguments` becomes an object — a JSON string
 * is parsed, an object is kept, and empty, invalid or non-object arguments become {}.
 * Roles are free strings, as vLLM's CustomChatCompletionMessageParam allows.
 */
import { fail, ok, type Outcome } from "../failure";
import type { ConversationMessage } from "./prompt";
import { parseContent } from "./chat-content";
import { renderedChars } from "./rendered-chars";
import { field, invalid, isNullish, isObject, pyTruthy, type Json, type JsonObject } from "./json-fields";

type MutableMessage = { -readonly [K in keyof ConversationMessage]: ConversationMessage[K] };

/**
 * Parses every message; fails with "prompt-too-long" as soon as what the template can render of
 * them (every field's value: role, content, reasoning once, tool calls, name, …) exceeds
 * `charsLeft` (what the request's other rendered fields left of `maxPromptChars`). The caller
 * checks the message count first.
 */
export function parseConversation(messages: readonly Json[], charsLeft: number, maxPromptChars = charsLeft): Outcome<ConversationMessage[]> {
  const out: ConversationMessage[] = [];
  let left = charsLeft;
  for (let i = 0; i < messages.length; i++) {
    const parsed = parseMessage(messages[i], `messages[${i}]`);
    if (!parsed.ok) return parsed;
    const message = parsed.value;
    for (const [key, value] of Object.entries(message)) if (key !== "reasoning_content") left -= renderedChars(value, left);
    if (left < 0) {
      return fail("prompt-too-long", `the prompt exceeds ${maxPromptChars} characters at messages[${i}] (tools, documents, template kwargs and messages count together)`);
    }
    out.push(message);
  }
  return ok(out);
}

function parseMessage(raw: Json, path: string): Outcome<ConversationMessage> {
  if (!isObject(raw)) return invalid(path, "expected object");
  const role = field(raw, "role");
  if (typeof role !== "string") return invalid(`${path}.role`, "expected string");
  const content = parseContent(role, field(raw, "content"), `${path}.content`);
  if (!content.ok) return content;
  const message: MutableMessage = { role, content: content.value };

  if (role === "assistant") {
    const toolCalls = field(raw, "tool_calls");
    if (!isNullish(toolCalls)) {
      const calls = parseToolCalls(toolCalls, `${path}.tool_calls`);
      if (!calls.ok) return calls;
      if (calls.value.length > 0) message.tool_calls = calls.value;
    }
    const reasoning = field(raw, "reasoning") ?? field(raw, "reasoning_content");
    if (!isNullish(reasoning)) {
      if (typeof reasoning !== "string") return invalid(`${path}.reasoning`, "expected string");
      message.reasoning = reasoning;
      message.reasoning_content = reasoning;
    }
  } else if (role === "tool") {
    const toolCallId = field(raw, "tool_call_id");
    if (!isNullish(toolCallId) && typeof toolCallId !== "string") {
      return invalid(`${path}.tool_call_id`, "expected string");
    }
    if (typeof toolCallId === "string") message.tool_call_id = toolCallId;
  }
  const name = field(raw, "name");
  if (typeof name === "string") message.name = name;
  const task = field(raw, "task");
  if (typeof task === "string") message.task = task;
  if (role === "developer") message.tools = field(raw, "tools") ?? null;
  return ok(message);
}

/** `_postprocess_messages` for one assistant message's tool_calls. */
function parseToolCalls(raw: Json, path: string): Outcome<Record<string, unknown>[]> {
  if (!Array.isArray(raw)) return invalid(path, "expected array");
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < raw.length; i++) {
    const call = raw[i];
    if (!isObject(call)) return invalid(`${path}[${i}]`, "expected object");
    const type = field(call, "type") ?? "function";
    const fn = field(call, "function");
    if (type !== "function" || !isObject(fn)) {
      return invalid(`${path}[${i}]`, 'expected a tool call of type "function" with a function object');
    }
    // Spread copies own data properties (a "__proto__" key stays a key) and keeps key order.
    out.push({ ...call, function: { ...fn, arguments: toolArguments(field(fn, "arguments")) } });
  }
  return ok(out);
}

/** vLLM: `if content := function.get("arguments")` → dict kept, str json.loads'd, else {}. */
function toolArguments(raw: Json | undefined): JsonObject {
  if (!pyTruthy(raw)) return {};
  if (isObject(raw)) return raw;
  if (typeof raw !== "string") return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    return isObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}
