/**
 * A /v1/chat/completions body → ChatPrompt, with vLLM's request defaults
 * (vllm/entrypoints/openai/chat_completion/protocol.py ChatCompletionRequest):
 * add_generation_prompt true, continue_final_message false (both true is an error),
 * add_special_tokens false, documents null, chat_template_kwargs {}.
 *
 * Template kwargs follow `build_chat_params` + vllm/renderers/params.py `merge_kwargs`: the request's
 * add_generation_prompt / continue_final_message / documents (when not null) override same-named
 * chat_template_kwargs; a non-null `reasoning_effort` is passed to the template and, unless the
 * client set `enable_thinking`, sets enable_thinking = (reasoning_effort != "none") (recent vLLM).
 * vLLM rejects `chat_template` / `tokenize` kwargs; `messages`, `conversation` and `tools` kwargs
 * collide with apply_chat_template's own arguments (a TypeError there), so they are rejected too.
 * A request-supplied `chat_template` is refused: vLLM does so unless started with
 * --trust-request-chat-template, and we render only the configured template.
 */
import { fail, ok, type Outcome } from "../failure";
import type { ChatPrompt } from "./prompt";
import { parseConversation } from "./chat-messages";
import { renderedChars } from "./rendered-chars";
import { field, invalid, isNullish, isObject, optionalBool, type Json, type JsonObject } from "./json-fields";
import { dumpTools } from "./vllm-tools";

export interface ChatLimits {
  readonly maxMessages: number;
  readonly maxPromptChars: number;
}

const REASONING_EFFORTS: ReadonlySet<string> = new Set(["none", "minimal", "low", "medium", "high", "xhigh", "max"]);
const REJECTED_KWARGS = ["chat_template", "tokenize", "messages", "conversation", "tools"] as const;
/** Kwargs that the request's own fields decide (merge_kwargs lets non-null request values win). */
const REQUEST_OWNED_KWARGS = ["add_generation_prompt", "continue_final_message", "documents"] as const;

export function parseChatRequest(body: JsonObject, model: string, limits: ChatLimits): Outcome<ChatPrompt> {
  const messages = field(body, "messages");
  if (!Array.isArray(messages)) return invalid("messages", "expected array");
  // Count first, so a 200k-message body costs nothing more than its JSON.parse.
  if (messages.length > limits.maxMessages) {
    return fail("too-many-messages", `${messages.length} messages, limit ${limits.maxMessages}`);
  }
  const addGenerationPrompt = optionalBool(body, "add_generation_prompt", true);
  if (typeof addGenerationPrompt !== "boolean") return addGenerationPrompt;
  const continueFinalMessage = optionalBool(body, "continue_final_message", false);
  if (typeof continueFinalMessage !== "boolean") return continueFinalMessage;
  if (addGenerationPrompt && continueFinalMessage) {
    return invalid("continue_final_message", "cannot be true together with add_generation_prompt");
  }
  const addSpecialTokens = optionalBool(body, "add_special_tokens", false);
  if (typeof addSpecialTokens !== "boolean") return addSpecialTokens;
  if (!isNullish(field(body, "chat_template"))) return invalid("chat_template", "request chat templates are not supported");

  // Every field the template renders counts against maxPromptChars, before anything is copied.
  const rendered: [string, Json | undefined][] = [
    ["tools", field(body, "tools")],
    ["documents", field(body, "documents")],
    ["chat_template_kwargs", field(body, "chat_template_kwargs")],
  ];
  let charsLeft = limits.maxPromptChars;
  for (const [name, raw] of rendered) {
    charsLeft -= renderedChars(raw, charsLeft);
    if (charsLeft < 0) return fail("prompt-too-long", `${name} exceed ${limits.maxPromptChars} characters (tools, documents, template kwargs and messages count together)`);
  }

  const tools = dumpTools(field(body, "tools"));
  if (!tools.ok) return tools;
  const kwargs = templateKwargs(body);
  if (!kwargs.ok) return kwargs;
  const documents = parseDocuments(field(body, "documents") ?? kwargs.value.documents);
  if (!documents.ok) return documents;

  const conversation = parseConversation(messages, charsLeft, limits.maxPromptChars);
  if (!conversation.ok) return conversation;
  return ok({
    kind: "chat",
    model,
    messages: conversation.value,
    tools: tools.value,
    documents: documents.value,
    addGenerationPrompt,
    continueFinalMessage,
    addSpecialTokens,
    templateKwargs: kwargs.value.rest,
  });
}

function templateKwargs(body: JsonObject): Outcome<{ rest: Record<string, unknown>; documents: Json | undefined }> {
  const raw = field(body, "chat_template_kwargs");
  if (!isNullish(raw) && !isObject(raw)) return invalid("chat_template_kwargs", "expected object or null");
  const user: JsonObject = raw ?? {};
  for (const key of REJECTED_KWARGS) {
    if (Object.prototype.hasOwnProperty.call(user, key)) return invalid(`chat_template_kwargs.${key}`, "not allowed");
  }
  const rest: Record<string, unknown> = Object.fromEntries(
    Object.entries(user).filter(([key]) => !(REQUEST_OWNED_KWARGS as readonly string[]).includes(key)),
  );
  const effort = field(body, "reasoning_effort");
  if (!isNullish(effort)) {
    if (typeof effort !== "string" || !REASONING_EFFORTS.has(effort)) {
      return invalid("reasoning_effort", `expected one of ${[...REASONING_EFFORTS].join(", ")}`);
    }
    rest.reasoning_effort = effort;
    if (!Object.prototype.hasOwnProperty.call(user, "enable_thinking")) rest.enable_thinking = effort !== "none";
  }
  return ok({ rest, documents: field(user, "documents") });
}

/** ChatCompletionRequest.documents: list[dict[str, str]] | None. */
function parseDocuments(raw: Json | undefined): Outcome<readonly Record<string, unknown>[] | null> {
  if (isNullish(raw)) return ok(null);
  if (!Array.isArray(raw)) return invalid("documents", "expected array of objects or null");
  for (let i = 0; i < raw.length; i++) {
    const doc = raw[i];
    if (!isObject(doc)) return invalid(`documents[${i}]`, "expected object");
    for (const [key, value] of Object.entries(doc)) {
      if (typeof value !== "string") return invalid(`documents[${i}].${key}`, "expected string");
    }
  }
  return ok(raw as JsonObject[]);
}
