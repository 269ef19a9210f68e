/**
 * Reads one model's tokenizer folder at startup: tokenizer.json (the Rust tokenizer and its
 * added_tokens), tokenizer_config.json (special tokens, chat template), and the optional files
 * transformers also reads: special_tokens_map.json and chat_template.jinja. This is config
 * validation, so problems throw an Error naming the model and the path.
 *
 * Chat template precedence (as vLLM → transformers resolve it): the configured `chatTemplate` file,
 * else chat_template.jinja, else tokenizer_config.json `chat_template` — a string, or a list of
 * {name, template} from which "tool_use" serves requests with tools and "default" the rest.
 *
 * Special tokens follow transformers' `special_tokens_map`: the named tokens that are set, as
 * strings (a config may give `{content: ...}` objects); absent ones are left undefined, exactly as
 * the Python template sees them.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "tokenizers";

export interface ModelTokenizerConfig {
  readonly name: string;
  /** Folder holding tokenizer.json and tokenizer_config.json. */
  readonly tokenizer: string;
  /** Optional chat template file overriding the folder's template. */
  readonly chatTemplate?: string;
}

export interface AddedTokenInfo {
  readonly id: number;
  readonly content: string;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  readonly singleWord: boolean;
  readonly normalized: boolean;
}

export interface ChatTemplateSources {
  readonly default?: string;
  readonly toolUse?: string;
}

export interface ModelFiles {
  readonly tokenizer: Tokenizer;
  /** tokenizer.json `pre_tokenizer` and `normalizer`, for the segmenting safety check. */
  readonly pipeline: { readonly preTokenizer: unknown; readonly normalizer: unknown };
  readonly addedTokens: readonly AddedTokenInfo[];
  readonly specialTokens: Readonly<Record<string, string | string[]>>;
  readonly templates: ChatTemplateSources;
  /** Largest id the tokenizer knows (vocab and added tokens); larger prompt ids are rejected. */
  readonly maxTokenId: number;
}

const NAMED_SPECIAL_TOKENS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

export function loadModelFiles(model: ModelTokenizerConfig): ModelFiles {
  const where = (path: string) => `model ${JSON.stringify(model.name)} (${path})`;
  const tokenizerPath = join(model.tokenizer, "tokenizer.json");
  const configPath = join(model.tokenizer, "tokenizer_config.json");
  if (!existsSync(model.tokenizer)) throw new Error(`${where(model.tokenizer)}: tokenizer folder not found`);
  // Cheap checks first: config and template problems surface before the tokenizer loads.
  const config = readJsonObject(configPath, where);
  const templates = readTemplates(model, config, where);
  if (templates.default === undefined && templates.toolUse === undefined) {
    throw new Error(`${where(configPath)}: no chat template (set chatTemplate or add chat_template)`);
  }
  const mapPath = join(model.tokenizer, "special_tokens_map.json");
  const fallback = existsSync(mapPath) ? readJsonObject(mapPath, where) : {};
  const tokenizerJson = readJsonObject(tokenizerPath, where);
  let tokenizer: Tokenizer;
  try {
    tokenizer = Tokenizer.fromFile(tokenizerPath);
  } catch (err) {
    throw new Error(`${where(tokenizerPath)}: cannot load tokenizer: ${String(err)}`);
  }
  // transformers disables truncation/padding for plain encode calls; so do we.
  tokenizer.disableTruncation();
  tokenizer.disablePadding();
  return {
    tokenizer,
    pipeline: { preTokenizer: tokenizerJson.pre_tokenizer ?? null, normalizer: tokenizerJson.normalizer ?? null },
    addedTokens: readAddedTokens(tokenizerJson, where(tokenizerPath)),
    specialTokens: readSpecialTokens(config, fallback),
    templates,
    maxTokenId: maxTokenId(tokenizer),
  };
}

/** vLLM's max_token_id = max(get_vocab().values()); ids are normally 0..size-1, checked cheaply. */
function maxTokenId(tokenizer: Tokenizer): number {
  const size = tokenizer.getVocabSize(true);
  if (size > 0 && tokenizer.idToToken(size - 1) !== null && tokenizer.idToToken(size) === null) return size - 1;
  return Object.values(tokenizer.getVocab(true)).reduce((max, id) => Math.max(max, id), 0);
}

function readJsonObject(path: string, where: (path: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${where(path)}: cannot read: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where(path)}: invalid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${where(path)}: expected a JSON object`);
  return value as Record<string, unknown>;
}

function readTemplates(model: ModelTokenizerConfig, config: Record<string, unknown>, where: (p: string) => string): ChatTemplateSources {
  if (model.chatTemplate !== undefined) return { default: readText(model.chatTemplate, where) };
  const jinjaPath = join(model.tokenizer, "chat_template.jinja");
  if (existsSync(jinjaPath)) return { default: readText(jinjaPath, where) };
  const raw = config.chat_template;
  if (typeof raw === "string") return { default: raw };
  if (Array.isArray(raw)) {
    const named = new Map<string, string>();
    for (const entry of raw) {
      const { name, template } = (entry ?? {}) as { name?: unknown; template?: unknown };
      if (typeof name === "string" && typeof template === "string") named.set(name, template);
    }
    return { default: named.get("default"), toolUse: named.get("tool_use") };
  }
  return {};
}

function readText(path: string, where: (p: string) => string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${where(path)}: cannot read chat template: ${(err as Error).message}`);
  }
}

function readAddedTokens(tokenizerJson: Record<string, unknown>, where: string): AddedTokenInfo[] {
  const raw = tokenizerJson.added_tokens ?? [];
  if (!Array.isArray(raw)) throw new Error(`${where}: added_tokens is not a list`);
  return raw.map((t: Record<string, unknown>) => ({
    id: Number(t.id),
    content: String(t.content),
    lstrip: Boolean(t.lstrip),
    rstrip: Boolean(t.rstrip),
    singleWord: Boolean(t.single_word),
    normalized: Boolean(t.normalized),
  }));
}

/** A special-token value as transformers stringifies it: "tok" or {content: "tok"}. */
function tokenString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return undefined;
}

function readSpecialTokens(config: Record<string, unknown>, fallback: Record<string, unknown>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name of NAMED_SPECIAL_TOKENS) {
    const value = tokenString(config[name]) ?? tokenString(fallback[name]);
    if (value) out[name] = value; // transformers keeps only truthy values
  }
  const extra = config.additional_special_tokens ?? fallback.additional_special_tokens;
  if (Array.isArray(extra)) {
    const tokens = extra.map(tokenString).filter((t): t is string => Boolean(t));
    if (tokens.length > 0) out.additional_special_tokens = tokens;
  }
  return out;
}
