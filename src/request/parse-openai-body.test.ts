import { describe, expect, it } from "vitest";
import type { FailureCode } from "../failure";
import { BodyPrefixMemo } from "./body-prefix-memo";
import { parseOpenAiBody, type BodyLimits } from "./parse-openai-body";
import type { ChatPrompt, Prompt } from "./prompt";

const LIMITS: BodyLimits = { maxBodyBytes: 1 << 20, maxMessages: 100, maxPromptChars: 10_000 };
const CHAT = "/v1/chat/completions";
const COMPLETIONS = "/v1/completions";

function parse(path: string, body: unknown, limits: BodyLimits = LIMITS) {
  return parseOpenAiBody(path, Buffer.from(typeof body === "string" ? body : JSON.stringify(body)), limits);
}

function value(path: string, body: unknown): Prompt {
  const out = parse(path, body);
  if (!out.ok) throw new Error(`${out.failure.code}: ${out.failure.detail}`);
  return out.value;
}

function chat(body: Record<string, unknown>): ChatPrompt {
  const p = value(CHAT, { model: "m", ...body });
  if (p.kind !== "chat") throw new Error("not a chat");
  return p;
}

describe("parseOpenAiBody failures", () => {
  const user = [{ role: "user", content: "hi" }];
  it.each<[string, string, unknown, FailureCode, RegExp?]>([
    ["embeddings path", "/v1/embeddings", { model: "m", input: "x" }, "unsupported-path"],
    ["path prefix only", "/v1/chat/completions/extra", { model: "m", messages: user }, "unsupported-path"],
    ["empty body", CHAT, "", "invalid-json"],
    ["not JSON", CHAT, "{model:", "invalid-json"],
    ["array body", CHAT, "[1,2]", "invalid-request", /^body: expected a JSON object/],
    ["missing model", CHAT, { messages: user }, "no-model"],
    ["empty model", CHAT, { model: "", messages: user }, "no-model"],
    ["null model", COMPLETIONS, { model: null, prompt: "x" }, "no-model"],
    ["numeric model", CHAT, { model: 7, messages: user }, "invalid-request", /^model:/],
    ["no messages", CHAT, { model: "m" }, "invalid-request", /^messages: expected array/],
    ["bad content", CHAT, { model: "m", messages: [user[0], user[0], user[0], { role: "user", content: 5 }] }, "invalid-request", /^messages\[3\]\.content: expected string or array of parts/],
    ["bad role", CHAT, { model: "m", messages: [{ content: "x" }] }, "invalid-request", /^messages\[0\]\.role/],
    ["unknown part type", CHAT, { model: "m", messages: [{ role: "user", content: [{ type: "hologram" }] }] }, "invalid-request", /messages\[0\]\.content\[0\]\.type: unsupported/],
    ["untyped part", CHAT, { model: "m", messages: [{ role: "user", content: [{ text: "x" }] }] }, "invalid-request", /missing content part type/],
    ["non-string text", CHAT, { model: "m", messages: [{ role: "user", content: [{ type: "text", text: 3 }] }] }, "invalid-request", /content\[0\]\.text: expected string/],
    ["both generation flags", CHAT, { model: "m", messages: user, continue_final_message: true }, "invalid-request", /^continue_final_message/],
    ["string flag", CHAT, { model: "m", messages: user, add_generation_prompt: "yes" }, "invalid-request", /^add_generation_prompt: expected boolean/],
    ["request chat_template", CHAT, { model: "m", messages: user, chat_template: "{{ x }}" }, "invalid-request", /^chat_template/],
    ["kwargs tokenize", CHAT, { model: "m", messages: user, chat_template_kwargs: { tokenize: true } }, "invalid-request", /chat_template_kwargs\.tokenize/],
    ["kwargs messages", CHAT, { model: "m", messages: user, chat_template_kwargs: { messages: [] } }, "invalid-request", /chat_template_kwargs\.messages/],
    ["kwargs not object", CHAT, { model: "m", messages: user, chat_template_kwargs: [1] }, "invalid-request", /^chat_template_kwargs/],
    ["bad reasoning_effort", CHAT, { model: "m", messages: user, reasoning_effort: "extreme" }, "invalid-request", /^reasoning_effort/],
    ["documents not dicts of str", CHAT, { model: "m", messages: user, documents: [{ title: 1 }] }, "invalid-request", /^documents\[0\]\.title/],
    ["tool call of other type", CHAT, { model: "m", messages: [{ role: "assistant", tool_calls: [{ type: "custom", custom: {} }] }] }, "invalid-request", /tool_calls\[0\]/],
    ["tools not a list", CHAT, { model: "m", messages: user, tools: {} }, "invalid-request", /^tools:/],
    ["no prompt", COMPLETIONS, { model: "m" }, "invalid-request", /^prompt:/],
    ["empty prompt list", COMPLETIONS, { model: "m", prompt: [] }, "invalid-request", /^prompt: must not be empty/],
    ["mixed prompt list", COMPLETIONS, { model: "m", prompt: ["a", 1] }, "invalid-request", /^prompt:/],
    ["negative id", COMPLETIONS, { model: "m", prompt: [1, -2] }, "invalid-request", /^prompt\[1\]/],
    ["fractional id", COMPLETIONS, { model: "m", prompt: [[1, 2.5]] }, "invalid-request", /^prompt\[0\]\[1\]/],
    ["prompt_embeds", COMPLETIONS, { model: "m", prompt_embeds: "AAAA" }, "invalid-request", /prompt_embeds/],
  ])("%s → %s", (_name, path, body, code, detail) => {
    const out = parse(path, body);
    expect(out.ok).toBe(false);
    if (out.ok) return;
    expect(out.failure.code).toBe(code);
    if (detail) expect(out.failure.detail).toMatch(detail);
  });

  it("rejects a body over maxBodyBytes before decoding it", () => {
    const out = parseOpenAiBody(CHAT, Buffer.from([0xff, 0xfe, 0xfd, 0xfc]), { ...LIMITS, maxBodyBytes: 3 });
    expect(out.ok || out.failure.code).toBe("body-too-large");
  });

  it("rejects invalid UTF-8 (an overlong encoding and a lone continuation byte)", () => {
    for (const bytes of [[0x7b, 0xc0, 0xaf, 0x7d], [0x7b, 0x22, 0x80, 0x22, 0x7d]]) {
      const out = parseOpenAiBody(CHAT, Buffer.from(bytes), LIMITS);
      expect(out.ok || out.failure.code).toBe("invalid-utf8");
    }
  });

  it("checks the message count before walking the messages", () => {
    // 200k messages that would each fail validation: only the count is looked at.
    const body = `{"model":"m","messages":[${Array(200_000).fill("7").join(",")}]}`;
    const started = performance.now();
    const out = parseOpenAiBody(CHAT, Buffer.from(body), { ...LIMITS, maxBodyBytes: 1 << 24 });
    expect(out.ok || out.failure.code).toBe("too-many-messages");
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("counts every rendered message field against maxPromptChars (role, content, reasoning once)", () => {
    const limits = { ...LIMITS, maxPromptChars: 14 };
    expect(parse(CHAT, { model: "m", messages: [{ role: "user", content: "0123456789" }] }, limits).ok).toBe(true);
    const long = parse(CHAT, { model: "m", messages: [{ role: "user", content: "0" }, { role: "assistant", content: "5", reasoning: "6789" }] }, limits);
    expect(long.ok || long.failure.code).toBe("prompt-too-long");
    const text = parse(COMPLETIONS, { model: "m", prompt: "0123456789abcde" }, limits);
    expect(text.ok || text.failure.code).toBe("prompt-too-long");
  });

  const big = "x".repeat(2_000);
  const tool = (description: string) => ({ type: "function", function: { name: "f", description, parameters: { type: "object" } } });
  it.each<[string, Record<string, unknown>]>([
    ["a tool description", { tools: [tool(big)] }],
    ["many small tools", { tools: Array.from({ length: 200 }, () => tool("0123456789")) }],
    ["a tool's parameter schema", { tools: [{ type: "function", function: { name: "f", parameters: { properties: { [big]: {} } } } }] }],
    ["documents", { documents: [{ title: "t", text: big }] }],
    ["chat_template_kwargs", { chat_template_kwargs: { extra: big } }],
    ["documents inside chat_template_kwargs", { chat_template_kwargs: { documents: [{ text: big }] } }],
    ["tool call arguments", { messages: [{ role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "f", arguments: { a: big } } }] }] }],
    ["a message name", { messages: [{ role: "user", content: "hi", name: big }] }],
    ["a developer message's tools", { messages: [{ role: "developer", content: "hi", tools: [tool(big)] }] }],
  ])("counts %s against maxPromptChars", (_name, fields) => {
    const limits = { ...LIMITS, maxBodyBytes: 1 << 22, maxPromptChars: 1_000 };
    const body = { model: "m", messages: [{ role: "user", content: "hi" }], ...fields };
    const out = parse(CHAT, body, limits);
    expect(out.ok || out.failure.code).toBe("prompt-too-long");
    // The same request within the limit is parsed.
    expect(parse(CHAT, body, { ...limits, maxPromptChars: 1_000_000 }).ok).toBe(true);
  });

  it("counts a deeply nested value without overflowing the stack", () => {
    const body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[${"[".repeat(100_000)}${"]".repeat(100_000)}]}`;
    const out = parse(CHAT, body, { ...LIMITS, maxPromptChars: 1_000 });
    expect(out.ok || out.failure.code).toBe("prompt-too-long");
  });
});

describe("parseOpenAiBody completions", () => {
  it.each<[string, unknown, Prompt]>([
    ["string", "hello", { kind: "completion-text", model: "m", text: "hello", addSpecialTokens: true }],
    ["batch of strings → first", ["a", "b"], { kind: "completion-text", model: "m", text: "a", addSpecialTokens: true }],
    ["token ids", [1, 2, 3], { kind: "completion-ids", model: "m", ids: [1, 2, 3] }],
    ["batch of id lists → first", [[4, 5], [6]], { kind: "completion-ids", model: "m", ids: [4, 5] }],
  ])("%s", (_name, prompt, expected) => {
    expect(value(COMPLETIONS, { model: "m", prompt })).toEqual(expected);
  });

  it("accepts a query string and honours add_special_tokens", () => {
    expect(value(`${COMPLETIONS}?x=1`, { model: "m", prompt: "p", add_special_tokens: false })).toEqual({
      kind: "completion-text",
      model: "m",
      text: "p",
      addSpecialTokens: false,
    });
  });
});

describe("parseOpenAiBody chat", () => {
  it("applies vLLM's defaults", () => {
    expect(chat({ messages: [{ role: "user", content: "hi" }] })).toEqual({
      kind: "chat",
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      tools: null,
      documents: null,
      addGenerationPrompt: true,
      continueFinalMessage: false,
      addSpecialTokens: false,
      templateKwargs: {},
    });
  });

  it("lets request fields win over same-named chat_template_kwargs", () => {
    const p = chat({
      messages: [{ role: "assistant", content: "x" }],
      add_generation_prompt: false,
      continue_final_message: true,
      add_special_tokens: true,
      chat_template_kwargs: { add_generation_prompt: true, continue_final_message: false, enable_thinking: false, documents: [{ title: "kw" }] },
      documents: [{ title: "t", text: "body" }],
    });
    expect(p.addGenerationPrompt).toBe(false);
    expect(p.continueFinalMessage).toBe(true);
    expect(p.addSpecialTokens).toBe(true);
    expect(p.templateKwargs).toEqual({ enable_thinking: false });
    expect(p.documents).toEqual([{ title: "t", text: "body" }]);
  });

  it("takes documents from chat_template_kwargs when the request has none", () => {
    expect(chat({ messages: [], chat_template_kwargs: { documents: [{ text: "d" }] } }).documents).toEqual([{ text: "d" }]);
  });

  it("maps reasoning_effort to template kwargs like recent vLLM", () => {
    expect(chat({ messages: [], reasoning_effort: "none" }).templateKwargs).toEqual({ reasoning_effort: "none", enable_thinking: false });
    expect(chat({ messages: [], reasoning_effort: "high" }).templateKwargs).toEqual({ reasoning_effort: "high", enable_thinking: true });
    expect(chat({ messages: [], reasoning_effort: "low", chat_template_kwargs: { enable_thinking: false } }).templateKwargs).toEqual({
      enable_thinking: false,
      reasoning_effort: "low",
    });
  });

  it("keeps tools when tool_choice is none", () => {
    const tools = [{ type: "function", function: { name: "f" } }];
    expect(chat({ messages: [], tools, tool_choice: "none" }).tools).toEqual([
      { type: "function", function: { name: "f", description: null, parameters: null } },
    ]);
  });
});

describe("parseOpenAiBody with a body-prefix memo", () => {
  it("answers as without it — prompts and failures — for turns that reuse the bytes of earlier ones", () => {
    const memo = new BodyPrefixMemo(1 << 20, 0);
    const system = { role: "system", content: "Answer from the manual below.\n".repeat(100) };
    const bodies = [
      { model: "m", messages: [system, { role: "user", content: "first?" }] },
      { model: "m", messages: [system, { role: "user", content: "first?" }, { role: "assistant", content: "yes" }, { role: "user", content: "second?" }], stream: true },
      { model: "m", messages: [system, { role: "user", content: "other?" }], max_tokens: 5, chat_template_kwargs: { enable_thinking: false } },
      { model: "m", messages: [system, { role: "user", content: "x".repeat(LIMITS.maxPromptChars) }] },
      { model: "m", messages: [system, { role: "user", content: 7 }] },
    ].map((b) => JSON.stringify(b));
    const broken = [bodies[0].slice(0, -1), `${bodies[0].slice(0, bodies[0].indexOf(',{"role":"user"'))},{"role":"user","content":"\\ud800"}]}`];
    for (const text of [...bodies, ...broken]) {
      expect(parseOpenAiBody(CHAT, Buffer.from(text), LIMITS, memo)).toEqual(parseOpenAiBody(CHAT, Buffer.from(text), LIMITS));
    }
    const invalidUtf8 = Buffer.concat([Buffer.from(bodies[0].slice(0, -3)), Buffer.from([0xc3]), Buffer.from('"}]}')]);
    expect(parseOpenAiBody(CHAT, invalidUtf8, LIMITS, memo)).toEqual(parseOpenAiBody(CHAT, invalidUtf8, LIMITS));
    expect(memo.stats().hits).toBeGreaterThanOrEqual(bodies.length - 1);
  });
});
