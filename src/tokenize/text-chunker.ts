/**
 * Cuts a long text segment into chunks that tokenize independently, so a 100 kB system prompt or a
 * 5 MB tool description is encoded in bounded pieces (bounded memory per call, a deadline checked
 * between pieces, several cores) and cached piece by piece.
 *
 * Why a cut is exact. The pre-tokenizers below split text with a regex into pieces that the BPE
 * model encodes one by one, so cutting where the regex would end a piece anyway changes nothing.
 * For each pattern in CHUNKABLE_PATTERNS (Qwen2/3; cl100k = Llama 3; o200k) that holds at
 * position p when
 *   (a) text[p-1] is "\n" and text[p] an ASCII letter: no alternative matches both a newline and a
 *       letter (the optional lead of the letter alternatives excludes \r and \n), and a whitespace
 *       run ending in "\n" is taken whole by `\s*[\r\n]+` before `\s+(?!\S)` (whose lookahead would
 *       differ at the end of the chunk) is tried; or
 *   (b) text[p-1] is an ASCII letter and text[p] a space: the letter run stops at the space, and
 *       the contractions ('re, 'll, …) fail on a space exactly as on the end of the chunk.
 * Scanning the rest from p gives the same pieces (no lookbehind); the pieces before p are the same
 * in the chunk (every alternative that reads past p-1 reads the same "not a letter / not
 * whitespace" there). NFC, where the tokenizer normalizes, cannot compose across p: both
 * characters at the cut are starters that compose with nothing on that side.
 * tokenizer.json files qualify only with exactly that pipeline (chunkablePipeline), and the loader
 * still compares chunked and whole encodings of a probe text.
 *
 * Where to cut among the allowed positions depends only on the nearby text (content-defined), so an
 * edit early in a long document leaves the later chunks — and their cache entries — unchanged.
 */

const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const CL100K = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const O200K = [
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
  "\\p{N}{1,3}",
  " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
  "\\s*[\\r\\n]+",
  "\\s+(?!\\S)",
  "\\s+",
].join("|");

/** Pre-tokenizer regexes for which the cut rules above are exact. */
export const CHUNKABLE_PATTERNS: ReadonlySet<string> = new Set([QWEN2, CL100K, O200K]);

/** The tiktoken pattern of cl100k_base (also transformers' default for tiktoken files). */
export const CL100K_PATTERN = CL100K;

/** Whether a tokenizer.json pipeline is one for which chunking is exact (see the header). */
export function chunkablePipeline(json: { normalizer?: unknown; pre_tokenizer?: unknown; model?: unknown }): boolean {
  const normalizer = json.normalizer as { type?: unknown } | null | undefined;
  if (normalizer != null && normalizer.type !== "NFC") return false;
  const model = json.model as { type?: unknown; dropout?: unknown } | undefined;
  if (model?.type !== "BPE" || (model.dropout !== null && model.dropout !== undefined)) return false;
  const pre = json.pre_tokenizer as { type?: unknown; pretokenizers?: unknown } | null | undefined;
  if (pre?.type !== "Sequence" || !Array.isArray(pre.pretokenizers) || pre.pretokenizers.length !== 2) return false;
  const [split, byteLevel] = pre.pretokenizers as Record<string, unknown>[];
  const pattern = (split.pattern as { Regex?: unknown } | undefined)?.Regex;
  return (
    split.type === "Split" && split.behavior === "Isolated" && split.invert === false && typeof pattern === "string" && CHUNKABLE_PATTERNS.has(pattern) &&
    byteLevel.type === "ByteLevel" && byteLevel.add_prefix_space === false && byteLevel.use_regex === false
  );
}

export interface ChunkSizes {
  /** No cut closer than this to the previous one (chars). */
  readonly min: number;
  /** Past this, cut at the first allowed position. */
  readonly max: number;
}

export const DEFAULT_CHUNK_SIZES: ChunkSizes = { min: 2048, max: 16_384 };

/** A cut at a content-chosen allowed position about every 64 allowed positions past `min`. */
const CUT_MASK = 63;

const isAsciiLetter = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
const NEWLINE = 0x0a;
const SPACE = 0x20;

/**
 * The text in chunks (one chunk when it is shorter than 2 × min or has no allowed cut), one at a
 * time: the text past the last chunk read is not scanned.
 */
export function* textChunks(text: string, sizes: ChunkSizes = DEFAULT_CHUNK_SIZES): Generator<string> {
  if (text.length < 2 * sizes.min) {
    yield text;
    return;
  }
  let last = 0;
  for (let p = last + sizes.min; p < text.length - sizes.min; p++) {
    const before = text.charCodeAt(p - 1);
    const at = text.charCodeAt(p);
    const allowed = (before === NEWLINE && isAsciiLetter(at)) || (at === SPACE && isAsciiLetter(before));
    if (!allowed) continue;
    if (p - last < sizes.max && (localHash(text, p) & CUT_MASK) !== 0) continue;
    yield text.slice(last, p);
    last = p;
    p = last + sizes.min - 1;
  }
  yield text.slice(last);
}

/** A cheap hash of the 12 characters before p: where to cut depends only on the nearby text. */
function localHash(text: string, p: number): number {
  let h = 0x811c9dc5;
  for (let i = Math.max(0, p - 12); i < p; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h ^ (h >>> 15)) >>> 0;
}
