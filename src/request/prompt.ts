/**
 * What the router understands of an OpenAI-style request body, in the shape vLLM hands to its
 * renderer: the conversation after vLLM's message parsing, or the raw completion prompt.
 */

/** A chat message after vLLM's `parse_chat_messages` (vllm/entrypoints/chat_utils.py). */
export interface ConversationMessage {
  readonly role: string;
  /** Text parts joined with "\n" (vLLM's "string" content format); null content becomes "". */
  readonly content: string;
  readonly name?: string;
  readonly tool_call_id?: string;
  /** Assistant tool calls with `function.arguments` parsed from JSON into objects, as vLLM does. */
  readonly tool_calls?: readonly Record<string, unknown>[];
  readonly reasoning?: string;
  readonly reasoning_content?: string;
  /** vLLM copies a string `task` field of any message (recent vLLM). */
  readonly task?: string;
  /** vLLM copies `tools` (null when absent) onto developer messages. */
  readonly tools?: unknown;
}

export interface ChatPrompt {
  readonly kind: "chat";
  readonly model: string;
  readonly messages: readonly ConversationMessage[];
  /** Tools as vLLM's `tool.model_dump()` gives them (declared fields first, null when absent). */
  readonly tools: readonly Record<string, unknown>[] | null;
  readonly documents: readonly Record<string, unknown>[] | null;
  readonly addGenerationPrompt: boolean;
  readonly continueFinalMessage: boolean;
  /** vLLM ChatCompletionRequest.add_special_tokens, default false. */
  readonly addSpecialTokens: boolean;
  /** Request `chat_template_kwargs` (e.g. enable_thinking), passed to the template. */
  readonly templateKwargs: Readonly<Record<string, unknown>>;
}

export interface CompletionTextPrompt {
  readonly kind: "completion-text";
  readonly model: string;
  readonly text: string;
  /** vLLM CompletionRequest.add_special_tokens, default true. */
  readonly addSpecialTokens: boolean;
}

export interface CompletionIdsPrompt {
  readonly kind: "completion-ids";
  readonly model: string;
  readonly ids: readonly number[];
}

/** What the router reads of a body besides the prompt. */
export interface ResponseShape {
  /** `"stream": true`: an SSE response, whose headers come before the prefill starts. */
  readonly stream?: boolean;
}

export type Prompt = (ChatPrompt | CompletionTextPrompt | CompletionIdsPrompt) & ResponseShape;
