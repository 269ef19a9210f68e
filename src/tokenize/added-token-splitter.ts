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

export class AddedTokenSplitter {
  private readonly pattern: RegExp | null;
  private readonly ids: ReadonlyMap<string, number>;

  constructor(tokens: readonly { readonly content: string; readonly id: number }[]) {
    const ids = new Map<string, number>();
    for (const t of tokens) if (t.content.length > 0) ids.set(t.content, t.id);
    this.ids = ids;
    // Alternatives longest first: at the leftmost matching position the regex takes the first
    // alternative that matches, which is then the longest — leftmost-longest.
    const alternatives = [...ids.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.pattern = alternatives.length > 0 ? new RegExp(alternatives.join("|"), "g") : null;
  }

  /** Pieces in text order; text pieces are never empty. */
  split(text: string): Piece[] {
    const pieces: Piece[] = [];
    if (this.pattern === null) {
      if (text.length > 0) pieces.push(text);
      return pieces;
    }
    const re = new RegExp(this.pattern); // own lastIndex: split() may run concurrently
    let last = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      if (m.index > last) pieces.push(text.slice(last, m.index));
      pieces.push(this.ids.get(m[0])!);
      last = m.index + m[0].length;
    }
    if (last < text.length) pieces.push(text.slice(last));
    return pieces;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
