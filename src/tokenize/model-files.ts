/**
 * Reads one model's tokenizer folder at startup: tokenizer.json (the Rust tokenizer and its
 * added_tokens) — or, without one, a tiktoken BPE file (`tiktoken.model` or a single `*.tiktoken`)
 * —, tokenizer_config.json (special tokens, chat template), and the optional files transformers
 * also reads: special_tokens_map.json and chat_template.jinja. This is config validation, so
 * problems throw an Error naming the model and the path.
 *
 * A tiktoken file holds only the ranks: its added tokens come from tokenizer_config.json's
 * `added_tokens_decoder`, and its split pattern from the model config (`tiktokenPattern`), by
 * default cl100k_base's, which is also what transformers assumes for a tiktoken file.
 *
 * Chat template precedence (as vLLM → transformers resolve it): the configured `chatTemplate` file,
 * else chat_template.jinja, else tokenizer_config.json `chat_template` — a string, or a list of
 * {name, template} from which "tool_use" serves requests with tools and "default" the rest.
 *
 * Special tokens follow transformers' `special_tokens_map`: the named tokens that are set, as
 * strings (a config may give `{content: ...}` objects); absent ones are left undefined, exactly as
 * the Python template sees them.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tiktoken } from "tiktoken";
import { Tokenizer } from "tokenizers";
import { chunkablePipeline, CHUNKABLE_PATTERNS, CL100K_PATTERN } from "./text-chunker";
import { tiktokenEncoder, type TokenEncoder } from "./token-encoder";

export interface ModelTokenizerConfig {
  readonly name: string;
  /** Folder holding tokenizer.json and tokenizer_config.json. */
  readonly tokenizer: string;
  /** Optional chat template file overriding the folder's template. */
  readonly chatTemplate?: string;
  /** Split pattern of a tiktoken BPE file (default: cl100k_base's). */
  readonly tiktokenPattern?: string;
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
  /** Hugging Face's tokenizer (tokenizer.json) or the tiktoken encoder (a tiktoken BPE file). */
  readonly tokenizer: Tokenizer | TokenEncoder;
  readonly format: "tokenizer.json" | "tiktoken";
  /**
   * tokenizer.json `pre_tokenizer` and `normalizer`, for the segmenting safety check; `chunkable`:
   * long segments may be cut (text-chunker.ts).
   */
  readonly pipeline: { readonly preTokenizer: unknown; readonly normalizer: unknown; readonly chunkable: boolean };
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
  const common = { specialTokens: readSpecialTokens(config, fallback), templates };
  if (!existsSync(tokenizerPath)) {
    const bpePath = tiktokenFile(model.tokenizer);
    if (bpePath === null) throw new Error(`${where(model.tokenizer)}: no tokenizer.json and no tiktoken file (tiktoken.model or *.tiktoken)`);
    return { ...common, ...loadTiktoken(model, bpePath, config, where) };
  }
  if (model.tiktokenPattern !== undefined) throw new Error(`${where(tokenizerPath)}: tiktokenPattern is only for a tiktoken file; this folder has tokenizer.json`);
  const tokenizerJson = readJsonObject(tokenizerPath, where);
  let tokenizer: Tokenizer;
  try {
    tokenizer = openTokenizerJson(tokenizerPath);
  } catch (err) {
    throw new Error(`${where(tokenizerPath)}: cannot load tokenizer: ${String(err)}`);
  }
  return {
    ...common,
    tokenizer,
    format: "tokenizer.json",
    pipeline: { preTokenizer: tokenizerJson.pre_tokenizer ?? null, normalizer: tokenizerJson.normalizer ?? null, chunkable: chunkablePipeline(tokenizerJson) },
    addedTokens: readAddedTokens(tokenizerJson, where(tokenizerPath)),
    maxTokenId: maxTokenId(tokenizer),
  };
}

/** The Rust tokenizer of a tokenizer.json as plain encode calls use it: transformers disables truncation and padding for them; so do we. */
export function openTokenizerJson(path: string): Tokenizer {
  const tokenizer = Tokenizer.fromFile(path);
  tokenizer.disableTruncation();
  tokenizer.disablePadding();
  return tokenizer;
}

/** `tiktoken.model`, else the folder's one `*.tiktoken` file, else null. */
function tiktokenFile(folder: string): string | null {
  if (existsSync(join(folder, "tiktoken.model"))) return join(folder, "tiktoken.model");
  const found = readdirSync(folder).filter((f) => f.endsWith(".tiktoken"));
  if (found.length > 1) throw new Error(`tokenizer folder ${folder}: several *.tiktoken files (${found.join(", ")}); keep one`);
  return found.length === 1 ? join(folder, found[0]) : null;
}

function loadTiktoken(model: ModelTokenizerConfig, bpePath: string, config: Record<string, unknown>, where: (p: string) => string): Omit<ModelFiles, "specialTokens" | "templates"> {
  let ranks: string;
  try {
    ranks = readFileSync(bpePath, "utf8");
  } catch (err) {
    throw new Error(`${where(bpePath)}: cannot read: ${(err as Error).message}`);
  }
  const maxRank = maxTiktokenRank(ranks, where(bpePath));
  const addedTokens = readAddedTokensDecoder(config, where(join(model.tokenizer, "tokenizer_config.json")));
  const pattern = model.tiktokenPattern ?? CL100K_PATTERN;
  let encoding: Tiktoken;
  try {
    encoding = new Tiktoken(ranks, Object.fromEntries(addedTokens.map((t) => [t.content, t.id])), pattern);
  } catch (err) {
    throw new Error(`${where(bpePath)}: cannot load the tiktoken file with pattern ${JSON.stringify(pattern)}: ${String(err)}`);
  }
  return {
    tokenizer: tiktokenEncoder(encoding),
    format: "tiktoken",
    // tiktoken has no normalizer; its one regex split is the pattern.
    pipeline: { preTokenizer: null, normalizer: null, chunkable: CHUNKABLE_PATTERNS.has(pattern) },
    addedTokens,
    maxTokenId: addedTokens.reduce((max, t) => Math.max(max, t.id), maxRank),
  };
}

/** The largest rank of a tiktoken file ("<base64 token> <rank>" per line); throws on a bad line. */
function maxTiktokenRank(ranks: string, where: string): number {
  let max = -1;
  let line = 0;
  for (const row of ranks.split("\n")) {
    line++;
    if (row === "") continue;
    const rank = Number(row.slice(row.indexOf(" ") + 1));
    if (row.indexOf(" ") <= 0 || !Number.isInteger(rank) || rank < 0) throw new Error(`${where}: line ${line} is not "<base64 token> <rank>"`);
    if (rank > max) max = rank;
  }
  if (max < 0) throw new Error(`${where}: no ranks`);
  return max;
}

/** tokenizer_config.json `added_tokens_decoder`: {"<id>": {content, lstrip, rstrip, single_word, normalized}}. */
function readAddedTokensDecoder(config: Record<string, unknown>, where: string): AddedTokenInfo[] {
  const raw = config.added_tokens_decoder ?? {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${where}: added_tokens_decoder is not an object`);
  return Object.entries(raw as Record<string, Record<string, unknown>>).map(([id, t]) => {
    if (!/^\d+$/.test(id) || typeof t?.content !== "string") throw new Error(`${where}: added_tokens_decoder entry ${JSON.stringify(id)} needs an integer id and a content string`);
    return addedToken({ ...t, id: Number(id) });
  });
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
  return raw.map(addedToken);
}

function addedToken(t: Record<string, unknown>): AddedTokenInfo {
  return {
    id: Number(t.id),
    content: String(t.content),
    lstrip: Boolean(t.lstrip),
    rstrip: Boolean(t.rstrip),
    singleWord: Boolean(t.single_word),
    normalized: Boolean(t.normalized),
  };
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
