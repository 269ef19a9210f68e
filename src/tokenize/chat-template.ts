/**
 * Renders a ChatPrompt with the model's chat template the way vLLM does through transformers
 * (vllm/renderers/hf.py `safe_apply_chat_template` → transformers
 * utils/chat_template_utils.py `render_jinja_template`), using @huggingface/jinja with the Python
 * fixes of python-compat.ts:
 *   - template: "tool_use" when the request has tools and the tokenizer names one, else "default";
 *   - variables: the tokenizer's special tokens, then the request's template kwargs, then messages,
 *     tools, documents and add_generation_prompt (raise_exception and strftime_now are built in);
 *   - kwargs are passed only when the template mentions them (vLLM passes only the template's
 *     undeclared variables; others could not change the output anyway) and never over the
 *     library's own globals (true, none, range, namespace, …);
 *   - continue_final_message: render with a tag appended to the final message's content and cut the
 *     text at the tag, as transformers does.
 * render() throws on template errors; the caller turns them into "template-error".
 *
 * @huggingface/jinja is patched (patches/, applied by patch-package on npm install): its runtime
 * values declared `type` and `value` as class fields, and V8 (Node 20) defines a field through a
 * slow path when one site sees many classes — ~0.4 µs per value, ~230 values per render of
 * Qwen3's template: 130 µs a render, now ~30 (the type lives on each class's prototype).
 */
import { Template } from "@huggingface/jinja";
import type { ChatPrompt, ConversationMessage } from "../request/prompt";
import type { ChatTemplateSources } from "./model-files";
import { PY_HELPER_GLOBALS, pyStrip, pythonize } from "./python-compat";

/** Names @huggingface/jinja defines before our variables; redefining one throws. */
const LIBRARY_GLOBALS = new Set(["false", "true", "none", "False", "True", "None", "raise_exception", "range", "strftime_now", "namespace"]);
const CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG ";

interface CompiledTemplate {
  readonly source: string;
  readonly template: Template;
}

export class ChatRenderer {
  private readonly defaultTemplate: CompiledTemplate | undefined;
  private readonly toolUseTemplate: CompiledTemplate | undefined;

  /** Throws if a template does not parse (startup config validation). */
  constructor(
    sources: ChatTemplateSources,
    private readonly specialTokens: Readonly<Record<string, unknown>>,
  ) {
    this.defaultTemplate = sources.default === undefined ? undefined : compile(sources.default);
    this.toolUseTemplate = sources.toolUse === undefined ? undefined : compile(sources.toolUse);
  }

  render(prompt: ChatPrompt): string {
    const compiled = (prompt.tools !== null ? this.toolUseTemplate : undefined) ?? this.defaultTemplate;
    if (compiled === undefined) throw new Error("the tokenizer has no default chat template");
    if (!prompt.continueFinalMessage) return this.run(compiled, prompt, prompt.messages);

    // transformers: append a tag to the final content, render, cut at the tag.
    const last = prompt.messages[prompt.messages.length - 1];
    if (last === undefined) throw new Error("continue_final_message is set but there is no message");
    if (!compiled.source.includes("content")) throw new Error('continue_final_message needs a template that reads "content"');
    const tagged: ConversationMessage = { ...last, content: last.content + CONTINUE_TAG };
    const rendered = this.run(compiled, prompt, [...prompt.messages.slice(0, -1), tagged]);
    const tag = CONTINUE_TAG.trim();
    if (!rendered.includes(pyStrip(last.content, null)) || !rendered.includes(tag)) {
      throw new Error("continue_final_message is set but the final message does not appear in the rendered chat");
    }
    const at = rendered.lastIndexOf(tag);
    return rendered.startsWith(CONTINUE_TAG, at) ? rendered.slice(0, at) : pyStrip(rendered.slice(0, at), null, "right");
  }

  private run(compiled: CompiledTemplate, prompt: ChatPrompt, messages: readonly ConversationMessage[]): string {
    const kwargs = Object.fromEntries(
      Object.entries(prompt.templateKwargs).filter(([key]) => !LIBRARY_GLOBALS.has(key) && mentions(compiled.source, key)),
    );
    // The library looks up a variable the context lacks (`enable_thinking is defined`) by throwing
    // and catching an Error; without a stack to capture, a Qwen3 render took ~27 µs, not ~35.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return compiled.template.render({
        ...this.specialTokens,
        ...kwargs,
        messages,
        tools: prompt.tools,
        documents: prompt.documents,
        add_generation_prompt: prompt.addGenerationPrompt,
        ...PY_HELPER_GLOBALS,
      });
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  }
}

function compile(source: string): CompiledTemplate {
  return { source, template: pythonize(new Template(source)) };
}

/** Whether `name` occurs as an identifier in the template source. */
function mentions(source: string, name: string): boolean {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return false;
  return new RegExp(`(^|[^A-Za-z0-9_])${name}($|[^A-Za-z0-9_])`).test(source);
}
