/**
 * A /v1/completions body → the prompt vLLM tokenizes (vllm CompletionRequest:
 * `prompt: list[int] | list[list[int]] | str | list[str]`, `add_special_tokens: bool = True`).
 * A batch (list of strings, list of id lists) is routed on its first prompt. Token-id prompts are
 * used as given: vLLM adds no special tokens to them.
 */
import { fail, ok, type Outcome } from "../failure";
import type { CompletionIdsPrompt, CompletionTextPrompt } from "./prompt";
import { field, invalid, optionalBool, type Json, type JsonObject } from "./json-fields";

const MAX_TOKEN_ID = 0xffff_ffff;

export function parseCompletionRequest(
  body: JsonObject,
  model: string,
  maxPromptChars: number,
): Outcome<CompletionTextPrompt | CompletionIdsPrompt> {
  const addSpecialTokens = optionalBool(body, "add_special_tokens", true);
  if (typeof addSpecialTokens !== "boolean") return addSpecialTokens;
  const prompt = field(body, "prompt");
  if (typeof prompt === "string") return textPrompt(model, prompt, addSpecialTokens, maxPromptChars);
  if (!Array.isArray(prompt)) {
    const embeds = field(body, "prompt_embeds") !== undefined;
    return invalid("prompt", embeds ? "prompt_embeds are not routed" : "expected string, array of strings or token ids");
  }
  if (prompt.length === 0) return invalid("prompt", "must not be empty");
  const first = prompt[0];
  if (typeof first === "number") return idsPrompt(model, prompt, "prompt", maxPromptChars);
  if (typeof first === "string") {
    if (!prompt.every((p) => typeof p === "string")) return invalid("prompt", "expected an array of strings only");
    return textPrompt(model, first, addSpecialTokens, maxPromptChars);
  }
  if (Array.isArray(first)) {
    for (let i = 1; i < prompt.length; i++) {
      if (!Array.isArray(prompt[i])) return invalid(`prompt[${i}]`, "expected array of token ids");
    }
    if (first.length === 0) return invalid("prompt[0]", "must not be empty");
    return idsPrompt(model, first, "prompt[0]", maxPromptChars);
  }
  return invalid("prompt[0]", "expected string, token id or array of token ids");
}

function textPrompt(model: string, text: string, addSpecialTokens: boolean, maxChars: number): Outcome<CompletionTextPrompt> {
  if (text.length > maxChars) return fail("prompt-too-long", `prompt has ${text.length} characters, limit ${maxChars}`);
  return ok({ kind: "completion-text", model, text, addSpecialTokens });
}

/** Each id stands for at least one character of prompt, so the character limit bounds ids too. */
function idsPrompt(model: string, ids: readonly Json[], path: string, maxChars: number): Outcome<CompletionIdsPrompt> {
  if (ids.length > maxChars) return fail("prompt-too-long", `prompt has ${ids.length} token ids, limit ${maxChars}`);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) {
      return invalid(`${path}[${i}]`, "expected a non-negative integer token id");
    }
  }
  return ok({ kind: "completion-ids", model, ids: ids as number[] });
}
