import { describe, expect, it } from "vitest";
import { parseConversation } from "./chat-messages";
import type { Json } from "./json-fields";

function conv(messages: Json[]) {
  const out = parseConversation(messages, 1_000_000);
  if (!out.ok) throw new Error(`${out.failure.code}: ${out.failure.detail}`);
  return out.value;
}

describe("message content (vLLM string content format)", () => {
  it.each<[string, Json, string]>([
    ["string", "hello", "hello"],
    ["null", null, ""],
    ["empty list", [], ""],
    ["text parts joined with newlines", [{ type: "text", text: "a" }, { type: "text", text: "b" }], "a\nb"],
    ["bare strings", ["a", { type: "text", text: "b" }, "c"], "a\nb\nc"],
    ["input_text / output_text", [{ type: "input_text", text: "in" }, { type: "output_text", text: "out" }], "in\nout"],
    ["refusal and thinking", [{ type: "refusal", refusal: "no" }, { type: "thinking", thinking: "hmm" }], "no\nhmm"],
    ["null and empty texts skipped", [{ type: "text", text: null }, { type: "text", text: "" }, "", { type: "text", text: "x" }], "x"],
    ["media parts skipped", [{ type: "image_url", image_url: { url: "u" } }, "t", { type: "input_audio", input_audio: {} }, { video_url: { url: "v" } }], "t"],
    ["tool_reference gives its name", [{ type: "tool_reference", name: "search" }], "search"],
  ])("%s", (_name, content, expected) => {
    expect(conv([{ role: "user", content }])[0].content).toBe(expected);
  });

  it("missing content is empty", () => {
    expect(conv([{ role: "assistant" }])).toEqual([{ role: "assistant", content: "" }]);
  });

  it("drops Claude Code's billing header line from system text only", () => {
    const header = "x-anthropic-billing-header: cch=1\nYou are helpful.";
    expect(conv([{ role: "system", content: header }])[0].content).toBe("You are helpful.");
    expect(conv([{ role: "system", content: [{ type: "text", text: "x-anthropic-billing-header: x" }, "rest"] }])[0].content).toBe("rest");
    expect(conv([{ role: "user", content: header }])[0].content).toBe(header);
  });
});

describe("message fields", () => {
  it("copies assistant tool_calls with arguments parsed to objects", () => {
    const [m] = conv([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "a", type: "function", function: { name: "f", arguments: '{"x": [1, {"y": "é"}]}' } },
          { id: "b", function: { name: "g", arguments: { k: 1 } } },
          { id: "c", type: "function", function: { name: "h", arguments: "" } },
          { id: "d", type: "function", function: { name: "i", arguments: "not json" } },
          { id: "e", type: "function", function: { name: "j", arguments: "[1, 2]" } },
          { id: "f", type: "function", function: { name: "k" } },
        ],
      },
    ]);
    expect(m.tool_calls).toEqual([
      { id: "a", type: "function", function: { name: "f", arguments: { x: [1, { y: "é" }] } } },
      { id: "b", function: { name: "g", arguments: { k: 1 } } },
      { id: "c", type: "function", function: { name: "h", arguments: {} } },
      { id: "d", type: "function", function: { name: "i", arguments: {} } },
      { id: "e", type: "function", function: { name: "j", arguments: {} } },
      { id: "f", type: "function", function: { name: "k", arguments: {} } },
    ]);
  });

  it("drops an empty tool_calls list and ignores tool_calls on other roles", () => {
    expect(conv([{ role: "assistant", content: "x", tool_calls: [] }])[0]).toEqual({ role: "assistant", content: "x" });
    expect(conv([{ role: "user", content: "x", tool_calls: [{ function: { name: "f" } }] }])[0]).toEqual({ role: "user", content: "x" });
  });

  it("sets reasoning and reasoning_content from either input name, on assistants only", () => {
    expect(conv([{ role: "assistant", content: "a", reasoning: "r" }])[0]).toEqual({ role: "assistant", content: "a", reasoning: "r", reasoning_content: "r" });
    expect(conv([{ role: "assistant", content: "a", reasoning_content: "old" }])[0]).toMatchObject({ reasoning: "old", reasoning_content: "old" });
    expect(conv([{ role: "user", content: "a", reasoning: "r" }])[0]).toEqual({ role: "user", content: "a" });
  });

  it("keeps tool_call_id, string names, task and developer tools, in vLLM's key order", () => {
    const [tool, user, dev] = conv([
      { role: "tool", content: "42", tool_call_id: "call_1", name: "calc" },
      { role: "user", content: "hi", name: 5, task: "t" },
      { role: "developer", content: "d" },
    ]);
    expect(Object.entries(tool)).toEqual([["role", "tool"], ["content", "42"], ["tool_call_id", "call_1"], ["name", "calc"]]);
    expect(user).toEqual({ role: "user", content: "hi", task: "t" });
    expect(dev).toEqual({ role: "developer", content: "d", tools: null });
  });

  it("accepts any role string, as vLLM's custom message param does", () => {
    expect(conv([{ role: "narrator", content: "once" }])).toEqual([{ role: "narrator", content: "once" }]);
  });

  it("keeps a __proto__ key in tool call arguments as plain data", () => {
    const [m] = conv([{ role: "assistant", tool_calls: [{ function: { name: "f", arguments: '{"__proto__": {"polluted": 1}}' } }] }]);
    const args = (m.tool_calls![0].function as { arguments: Record<string, unknown> }).arguments;
    expect(Object.keys(args)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
