/**
 * Splits text on a tokenizer's added tokens the way Hugging Face's AddedVocabulary does before
 * anything else runs: all added tokens (special or not) are matched on the raw text, leftmost
 * first, longest among those starting at the same position (aho-corasick LeftmostLongest). The
 * text between matches is what the normalizer, pre-tokenizer and model then see, one piece at a
 * time — which is why each piece can be tokenized (and cached) on its own.
 *
 * Only valid for added tokens with lstrip/rstrip/single_word/normalized all false; the caller checks.
 */
export type Piece = string | number; // text segment, or the id of an added token

/**
 * At most this many distinct first characters among the added tokens: candidates are found with
 * indexOf, one per character (Qwen3's and Llama 3's all start with "<").
 */
const MAX_FIRST_CHARS = 4;

export class AddedTokenSplitter {
  private readonly pattern: RegExp | null;
  /** The pattern anchored at lastIndex (y), for the indexOf path. */
  private readonly sticky: RegExp | null;
  /** The tokens' distinct first characters when there are few, else null (the regex scans alone). */
  private readonly firstChars: readonly string[] | null;
  private readonly ids: ReadonlyMap<string, number>;

  constructor(tokens: readonly { readonly content: string; readonly id: number }[]) {
    const ids = new Map<string, number>();
    for (const t of tokens) if (t.content.length > 0) ids.set(t.content, t.id);
    this.ids = ids;
    // Alternatives longest first: at the leftmost matching position the regex takes the first
    // alternative that matches, which is then the longest — leftmost-longest.
    const alternatives = [...ids.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.pattern = alternatives.length > 0 ? new RegExp(alternatives.join("|"), "g") : null;
    this.sticky = this.pattern && new RegExp(this.pattern.source, "y");
    const firstChars = [...new Set([...ids.keys()].map((t) => t[0]))];
    this.firstChars = firstChars.length > 0 && firstChars.length <= MAX_FIRST_CHARS ? firstChars : null;
  }

  /** Pieces in text order; text pieces are never empty. */
  split(text: string): Piece[] {
    const pieces: Piece[] = [];
    if (this.pattern === null) {
      if (text.length > 0) pieces.push(text);
      return pieces;
    }
    const add = (at: number, token: string) => {
      if (at > last) pieces.push(text.slice(last, at));
      pieces.push(this.ids.get(token)!);
      last = at + token.length;
    };
    let last = 0;
    if (this.firstChars === null) {
      const re = new RegExp(this.pattern); // own lastIndex: split() may run concurrently
      for (let m = re.exec(text); m !== null; m = re.exec(text)) add(m.index, m[0]);
    } else {
      // The regex tries every position of the text; a token can start only where one of its few
      // first characters does (a 32k-token prompt: ~5 µs instead of ~50).
      const re = new RegExp(this.sticky!);
      const starts = this.firstChars;
      const next = starts.map((c) => text.indexOf(c));
      for (;;) {
        let at = -1;
        for (const p of next) if (p >= 0 && (at < 0 || p < at)) at = p;
        if (at < 0) break;
        re.lastIndex = at;
        const m = re.exec(text);
        if (m !== null) add(at, m[0]);
        const resume = m !== null ? last : at + 1;
        for (let k = 0; k < next.length; k++) if (next[k] >= 0 && next[k] < resume) next[k] = text.indexOf(starts[k], resume);
      }
    }
    if (last < text.length) pieces.push(text.slice(last));
    return pieces;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
