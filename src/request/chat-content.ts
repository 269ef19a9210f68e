/**
 * One message's `content` → the text vLLM puts in the conversation, for templates in vLLM's
 * "string" content format (Qwen3, Llama 3 and most text models). Mirrors
 * vllm/renderers/chat_utils/parse_chat_message_content.py (`_parse_chat_message_content_part(s)`,
 * formerly in vllm/entrypoints/chat_utils.py):
 *   - a string is one text part; null/absent content is no parts;
 *   - parts of type text/input_text/output_text (field `text`), refusal (`refusal`), thinking
 *     (`thinking`) and tool_reference (`name`), and bare strings, give their text; a part whose text
 *     is null or "" is skipped (vLLM keeps only truthy parse results);
 *   - the texts are joined with "\n".
 * Image/audio/video/embeds parts are skipped: we route on text only. (For a multimodal model in
 * "string" format vLLM would add placeholder text for them; text models reject them.)
 * Unknown part types and parts with neither a type nor a media key are errors, as in vLLM.
 */
import { ok, type Outcome } from "../failure";
import { field, invalid, isNullish, isObject, type Json } from "./json-fields";

/** Part type → the field holding its text. */
const TEXT_FIELDS: ReadonlyMap<string, string> = new Map([
  ["text", "text"],
  ["input_text", "text"],
  ["output_text", "text"],
  ["refusal", "refusal"],
  ["thinking", "thinking"],
  ["tool_reference", "name"],
]);

/** Media part types (vLLM's MM_PARSER_MAP minus the text types); also media keys of untyped parts. */
const MEDIA_TYPES: ReadonlySet<string> = new Set([
  "image_url",
  "input_image",
  "image_embeds",
  "image_pil",
  "audio_url",
  "input_audio",
  "audio_embeds",
  "video_url",
  "video_embeds",
  "prompt_embeds",
]);

/** Claude Code's per-request attribution line; vLLM drops it from system text so prefixes cache. */
const BILLING_HEADER = "x-anthropic-billing-header";

export function parseContent(role: string, content: Json | undefined, path: string): Outcome<string> {
  if (isNullish(content)) return ok("");
  let parts: Json[];
  if (typeof content === "string") parts = [content];
  else if (Array.isArray(content)) parts = content;
  else return invalid(path, "expected string or array of parts");

  const texts: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const text = partText(parts[i], `${path}[${i}]`);
    if (!text.ok) return text;
    let value = text.value;
    // vllm parse_chat_message_content.py `_strip_claude_code_billing_header`: system role, plain
    // strings and "text" parts only.
    if (role === "system" && value !== null && isPlainText(parts[i]) && value.startsWith(BILLING_HEADER)) {
      const newline = value.indexOf("\n");
      value = newline < 0 ? "" : value.slice(newline + 1);
    }
    if (value) texts.push(value);
  }
  return ok(texts.join("\n"));
}

/** The text of one part, null for parts that contribute no text. */
function partText(part: Json, path: string): Outcome<string | null> {
  if (typeof part === "string") return ok(part);
  if (!isObject(part)) return invalid(path, "expected string or object part");
  const type = field(part, "type");
  const uuid = field(part, "uuid");
  if (typeof type === "string" && isNullish(uuid)) {
    const textField = TEXT_FIELDS.get(type);
    if (textField !== undefined) {
      const text = field(part, textField);
      if (isNullish(text)) return ok(null);
      if (typeof text !== "string") return invalid(`${path}.${textField}`, "expected string");
      return ok(text);
    }
    if (MEDIA_TYPES.has(type)) return ok(null);
    return invalid(`${path}.type`, `unsupported content part type ${JSON.stringify(type)}`);
  }
  if (isNullish(type) || !isNullish(uuid)) {
    // vLLM accepts untyped (or uuid-carrying) parts that name a media key; they are media.
    if (Object.keys(part).some((key) => MEDIA_TYPES.has(key))) return ok(null);
    if (field(part, "tool_reference") !== undefined) return ok(stringOrNull(field(part, "name")));
    return invalid(`${path}.type`, "missing content part type");
  }
  return invalid(`${path}.type`, "expected string");
}

function isPlainText(part: Json): boolean {
  return typeof part === "string" || (isObject(part) && field(part, "type") === "text");
}

function stringOrNull(value: Json | undefined): string | null {
  return typeof value === "string" ? value : null;
}
