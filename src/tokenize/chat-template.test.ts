import { Environment, Interpreter, parse, tokenize } from "@huggingface/jinja";
import { describe, expect, it } from "vitest";
import type { ChatPrompt } from "../request/prompt";
import { ChatRenderer } from "./chat-template";

function prompt(overrides: Partial<ChatPrompt>): ChatPrompt {
  return {
    kind: "chat",
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    tools: null,
    documents: null,
    addGenerationPrompt: true,
    continueFinalMessage: false,
    addSpecialTokens: false,
    templateKwargs: {},
    ...overrides,
  };
}

const CHATML =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

describe("ChatRenderer", () => {
  it("renders messages and the generation prompt", () => {
    const r = new ChatRenderer({ default: CHATML }, {});
    expect(r.render(prompt({}))).toBe("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    expect(r.render(prompt({ addGenerationPrompt: false }))).toBe("<|im_start|>user\nhi<|im_end|>\n");
  });

  it("exposes special tokens, leaving unset ones undefined as transformers does", () => {
    const r = new ChatRenderer({ default: "[{{ bos_token }}|{{ eos_token }}|{% if unk_token is defined %}unk{% else %}-{% endif %}|{{ additional_special_tokens[1] }}]" }, {
      bos_token: "<s>",
      eos_token: "</s>",
      additional_special_tokens: ["<a>", "<b>"],
    });
    expect(r.render(prompt({}))).toBe("[<s>|</s>|-|<b>]");
  });

  it("passes only template kwargs the template mentions, and never over library globals", () => {
    const r = new ChatRenderer({ default: "{{ enable_thinking }}/{% if other is defined %}other{% endif %}/{% if true %}T{% endif %}" }, {});
    expect(r.render(prompt({ templateKwargs: { enable_thinking: "yes", unrelated: 1, true: "shadow" } }))).toBe("yes//T");
    // A kwarg may override a special token, as in transformers ({**special_tokens_map, **kwargs}).
    const bos = new ChatRenderer({ default: "{{ bos_token }}" }, { bos_token: "<s>" });
    expect(bos.render(prompt({ templateKwargs: { bos_token: "<S>" } }))).toBe("<S>");
  });

  it("picks the tool_use template for requests with tools (even an empty list)", () => {
    const r = new ChatRenderer({ default: "default", toolUse: "tools:{{ tools | length }}" }, {});
    expect(r.render(prompt({}))).toBe("default");
    expect(r.render(prompt({ tools: [] }))).toBe("tools:0");
    expect(r.render(prompt({ tools: [{ type: "function" }] }))).toBe("tools:1");
    expect(() => new ChatRenderer({ toolUse: "t" }, {}).render(prompt({}))).toThrow(/no default chat template/);
  });

  it("continue_final_message cuts right after the final message's content", () => {
    const r = new ChatRenderer({ default: CHATML }, {});
    const p = prompt({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "Once upon" }], addGenerationPrompt: false, continueFinalMessage: true });
    expect(r.render(p)).toBe("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nOnce upon");
  });

  it("continue_final_message with a template that trims content cuts and right-strips", () => {
    const r = new ChatRenderer({ default: "{% for m in messages %}[{{ m.content | trim }}]{% endfor %}" }, {});
    const p = prompt({ messages: [{ role: "assistant", content: "Once upon  " }], addGenerationPrompt: false, continueFinalMessage: true });
    expect(r.render(p)).toBe("[Once upon");
  });

  it("continue_final_message fails when the template drops the final message", () => {
    const r = new ChatRenderer({ default: "{% for m in messages[:-1] %}{{ m.content }}{% endfor %}" }, {});
    const p = prompt({ messages: [{ role: "user", content: "a" }, { role: "assistant", content: "b" }], addGenerationPrompt: false, continueFinalMessage: true });
    expect(() => r.render(p)).toThrow(/does not appear/);
  });

  it("surfaces raise_exception as an error", () => {
    const r = new ChatRenderer({ default: "{{ raise_exception('Conversation roles must alternate') }}" }, {});
    expect(() => r.render(prompt({}))).toThrow(/roles must alternate/);
  });

  it("gives errors their stack back after a render, thrown or not", () => {
    const limit = Error.stackTraceLimit;
    const failing = new ChatRenderer({ default: "{{ raise_exception('no') }}" }, {});
    expect(() => failing.render(prompt({}))).toThrow(/no/);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new ChatRenderer({ default: CHATML }, {}).render(prompt({}))).toContain("hi");
    expect(Error.stackTraceLimit).toBe(limit);
  });
});

describe("@huggingface/jinja as patched (patches/, applied on npm install)", () => {
  // Without the patch each value defines `type` as an own field (V8's slow path: chat-template.ts).
  // Both builds: the router loads the CommonJS one, vitest the ES module.
  const builds = { "ES module": { Environment, Interpreter, parse, tokenize }, CommonJS: require("@huggingface/jinja") as typeof import("@huggingface/jinja") };
  it.each(Object.entries(builds))("keeps a value's type on its class's prototype, not on every value (%s)", (_build, jinja) => {
    const value = new jinja.Interpreter(new jinja.Environment()).run(jinja.parse(jinja.tokenize("{{ 'a' + 'b' }}")));
    expect(value.value).toBe("ab");
    expect(value.type).toBe("StringValue");
    expect(Object.hasOwn(value, "type")).toBe(false);
  });
});
