/**
 * Request `tools` exactly as vLLM hands them to the chat template: `[tool.model_dump() for tool in
 * request.tools]` (vllm/entrypoints/openai/chat_completion/serving.py). The models are
 *   ChatCompletionToolsParam {type: "function" = "function", function: FunctionDefinition}
 *   FunctionDefinition {name: str, description: str | None = None, parameters: dict | None = None}
 * with pydantic extra="allow", so a dump lists the declared keys first, in declaration order, with
 * null for absent ones, then any extra keys in the order the client sent them. Templates such as
 * Qwen3's `tool | tojson` serialize that dict, so key order and nulls change the tokens.
 *
 * Version note: vLLM main after PR #40190 (2026-04) gives FunctionDefinition and the tool a
 * serializer that drops extra keys and omits `strict`/`defer_loading` when null. This module follows
 * the long-standing extra="allow" dump; the two agree whenever a client sends no extra keys.
 *
 * `tool_choice: "none"` keeps the tools: vLLM strips them only with the server flag
 * `--exclude-tools-when-tool-choice-none` (off by default).
 */
import { ok, type Outcome } from "../failure";
import { extraEntries, field, invalid, isNullish, isObject, type Json, type JsonObject } from "./json-fields";

export type ToolDump = Record<string, unknown>;

export function dumpTools(tools: Json | undefined): Outcome<readonly ToolDump[] | null> {
  if (isNullish(tools)) return ok(null);
  if (!Array.isArray(tools)) return invalid("tools", "expected array or null");
  const out: ToolDump[] = [];
  for (let i = 0; i < tools.length; i++) {
    const dumped = dumpTool(tools[i], `tools[${i}]`);
    if (!dumped.ok) return dumped;
    out.push(dumped.value);
  }
  return ok(out);
}

function dumpTool(tool: Json, path: string): Outcome<ToolDump> {
  if (!isObject(tool)) return invalid(path, "expected object");
  const type = field(tool, "type");
  if (type !== undefined && type !== "function") return invalid(`${path}.type`, 'expected "function"');
  const fn = field(tool, "function");
  if (!isObject(fn)) return invalid(`${path}.function`, "expected object");
  const dumpedFn = dumpFunction(fn, `${path}.function`);
  if (!dumpedFn.ok) return dumpedFn;
  // Object.fromEntries defines own properties, so a "__proto__" key stays a plain key.
  return ok(Object.fromEntries([["type", "function"], ["function", dumpedFn.value], ...extraEntries(tool, ["type", "function"])]));
}

function dumpFunction(fn: JsonObject, path: string): Outcome<ToolDump> {
  const name = field(fn, "name");
  if (typeof name !== "string") return invalid(`${path}.name`, "expected string");
  const description = field(fn, "description");
  if (!isNullish(description) && typeof description !== "string") {
    return invalid(`${path}.description`, "expected string or null");
  }
  const parameters = field(fn, "parameters");
  if (!isNullish(parameters) && !isObject(parameters)) return invalid(`${path}.parameters`, "expected object or null");
  return ok(
    Object.fromEntries([
      ["name", name],
      ["description", description ?? null],
      ["parameters", parameters ?? null],
      ...extraEntries(fn, ["name", "description", "parameters"]),
    ]),
  );
}
