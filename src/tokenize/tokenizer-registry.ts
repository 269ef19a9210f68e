/**
 * Model name → tokenizer that turns a Prompt into the token ids vLLM will see.
 *
 * What vLLM tokenizes (vllm/renderers/base.py, vllm/renderers/hf.py):
 *   - chat: the chat template is rendered to text (tokenize=False), then encoded with
 *     add_special_tokens = request.add_special_tokens, default false (`default_chat_tok_params`),
 *     because the template already wrote BOS and the other control tokens;
 *   - completion text: encoded with add_special_tokens = request.add_special_tokens, default true
 *     (`default_cmpl_tok_params`);
 *   - completion token ids: used as given (ids above the tokenizer's largest id are rejected, as
 *     vLLM rejects out-of-vocabulary ids).
 * Encoding uses the model's own tokenizer.json through Hugging Face's Rust tokenizer — or, for a
 * folder with a tiktoken BPE file instead, OpenAI's tiktoken (model-files.ts) — segmented and
 * cached where that is provably identical (segmented-encoder.ts). tokenize() never throws.
 *
 * Loading is startup config validation: a bad folder, JSON or template throws an Error naming the
 * model and the path. Models that share a tokenizer folder and template share one loaded tokenizer.
 */
import { fail, ok, type Outcome } from "../failure";
import type { ChatPrompt, Prompt } from "../request/prompt";
import { ChatRenderer } from "./chat-template";
import type { BulkEncoderClient } from "./bulk-encoder";
import { BulkGate, type BulkGateShare } from "./bulk-gate";
import { loadModelFiles, type ModelTokenizerConfig } from "./model-files";
import { SegmentCache, type SegmentCacheStats } from "./segment-cache";
import { SegmentedEncoder, type BulkEncode } from "./segmented-encoder";

export type { ModelTokenizerConfig } from "./model-files";

export interface ModelTokenizer {
  readonly model: string;
  tokenize(prompt: Prompt): Promise<Outcome<Uint32Array>>;
  /** The chat prompt as text, exactly as it is tokenized (for tests, debugging and tracing). */
  render(prompt: ChatPrompt): Outcome<string>;
  /** Encodes rendered text (the second half of tokenize() for a chat prompt). */
  encode(text: string, addSpecialTokens: boolean): Promise<Outcome<Uint32Array>>;
  /** Validates completion token ids against the vocabulary. */
  checkIds(ids: readonly number[]): Outcome<Uint32Array>;
  /** Text a tokenizer can encode (valid UTF-16: a lone surrogate has no UTF-8 form). */
  checkText(text: string): Outcome<string>;
  /** The encoder behind encode(): its pieces and their ids, for callers that cache by piece. */
  readonly encoder: SegmentedEncoder;
}

export interface TokenizerRegistry {
  get(model: string): ModelTokenizer | undefined;
  stats(): SegmentCacheStats;
}

export interface TokenizerRegistryOptions {
  /** Budget of the segment → ids cache shared by all models; 0 disables it. */
  readonly segmentCacheBytes: number;
  /** Bounds bulk encoding together with other threads (tokenizer threads share one). */
  readonly bulkGate?: BulkGateShare;
  /** Where bulk batches are encoded first (bulk-encoder.ts), built for these models. */
  readonly bulkEncoder?: BulkEncoderClient;
}

interface LoadedTokenizer {
  readonly renderer: ChatRenderer;
  readonly encoder: SegmentedEncoder;
  readonly maxTokenId: number;
}

export async function loadTokenizerRegistry(
  models: readonly ModelTokenizerConfig[],
  options: TokenizerRegistryOptions,
): Promise<TokenizerRegistry> {
  const cache = new SegmentCache(options.segmentCacheBytes);
  const gate = options.bulkGate ? new BulkGate(options.bulkGate) : null;
  const loaded = new Map<string, Promise<LoadedTokenizer>>();
  const byModel = new Map<string, ModelTokenizer>();
  for (const [index, model] of models.entries()) {
    const key = JSON.stringify([model.tokenizer, model.chatTemplate ?? null, model.tiktokenPattern ?? null]);
    let shared = loaded.get(key);
    if (shared === undefined) {
      const bulk = options.bulkEncoder;
      shared = loadTokenizer(model, cache, `${loaded.size}\u0000`, gate, bulk ? (texts) => bulk.encode(index, texts) : null);
      loaded.set(key, shared);
    }
    byModel.set(model.name, new PromptTokenizer(model.name, await shared));
  }
  return {
    get: (model) => byModel.get(model),
    stats: () => cache.stats(),
  };
}

async function loadTokenizer(model: ModelTokenizerConfig, cache: SegmentCache, namespace: string, gate: BulkGate | null, bulk: BulkEncode | null): Promise<LoadedTokenizer> {
  const files = loadModelFiles(model);
  let renderer: ChatRenderer;
  try {
    renderer = new ChatRenderer(files.templates, files.specialTokens);
  } catch (err) {
    throw new Error(`model ${JSON.stringify(model.name)} (${model.chatTemplate ?? model.tokenizer}): chat template does not parse: ${String(err)}`);
  }
  const encoder = await SegmentedEncoder.create(files.tokenizer, files.addedTokens, files.pipeline, cache, namespace, gate, bulk);
  return { renderer, encoder, maxTokenId: files.maxTokenId };
}

/** In a `u` regex a valid surrogate pair is one code point, so this matches only lone halves. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
/** String.prototype.isWellFormed (Node 20+, not in the ES2023 lib): far faster than the regex. */
const isWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

class PromptTokenizer implements ModelTokenizer {
  constructor(
    readonly model: string,
    private readonly loaded: LoadedTokenizer,
  ) {}

  get encoder(): SegmentedEncoder {
    return this.loaded.encoder;
  }

  render(prompt: ChatPrompt): Outcome<string> {
    try {
      return ok(this.loaded.renderer.render(prompt));
    } catch (err) {
      return fail("template-error", err instanceof Error ? err.message : String(err));
    }
  }

  async tokenize(prompt: Prompt): Promise<Outcome<Uint32Array>> {
    switch (prompt.kind) {
      case "completion-ids":
        return this.checkIds(prompt.ids);
      case "completion-text":
        return this.encode(prompt.text, prompt.addSpecialTokens);
      case "chat": {
        const text = this.render(prompt);
        return text.ok ? this.encode(text.value, prompt.addSpecialTokens) : text;
      }
    }
  }

  checkIds(ids: readonly number[]): Outcome<Uint32Array> {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id > this.loaded.maxTokenId) {
        return fail("tokenize-error", `token id ${id} is outside the vocabulary (max ${this.loaded.maxTokenId})`);
      }
    }
    return ok(Uint32Array.from(ids));
  }

  checkText(text: string): Outcome<string> {
    // A lone surrogate (from a JSON "\ud800" escape) cannot be UTF-8 encoded; vLLM fails it too.
    const wellFormed = isWellFormed ? isWellFormed.call(text) : !LONE_SURROGATE.test(text);
    return wellFormed ? ok(text) : fail("tokenize-error", "text contains a lone UTF-16 surrogate");
  }

  async encode(text: string, addSpecialTokens: boolean): Promise<Outcome<Uint32Array>> {
    const checked = this.checkText(text);
    if (!checked.ok) return checked;
    try {
      return ok(await this.loaded.encoder.encode(text, addSpecialTokens));
    } catch (err) {
      return fail("tokenize-error", err instanceof Error ? err.message : String(err));
    }
  }
}
