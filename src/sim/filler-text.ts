/**
 * Synthetic output: a cycle of common English words, each " word" exactly one token of the model's
 * tokenizer, so output token k has a known id and a known text. Because byte-level BPE tokenizers
 * split on " word" boundaries, sending the text back (the next chat turn) tokenizes to the same ids,
 * so generated blocks hit in multi-turn chats as they do with a real model at temperature 0.
 * The first word has no leading space: templates such as Llama 3's trim message content.
 */
import type { ModelTokenizer } from "../tokenize/tokenizer-registry";

const WORDS = (
  "the model is a simulated replica and this text is filler that it returns for every request so that " +
  "clients can see tokens arrive at the pace of the cost model with no GPU in sight while the router " +
  "decides where each prompt should go and the cache holds what was computed before"
).split(" ");

export class FillerText {
  private constructor(
    private readonly words: readonly string[],
    private readonly wordIds: Uint32Array,
    /** The first output token: the first word without its space (or with it, if that is not one token). */
    private readonly first: { readonly text: string; readonly id: number },
  ) {}

  /** Keeps the words that are one token each (with their leading space) for this tokenizer. */
  static async create(tokenizer: ModelTokenizer): Promise<FillerText> {
    const single = async (text: string): Promise<number | null> => {
      const r = await tokenizer.tokenize({ kind: "completion-text", model: tokenizer.model, text, addSpecialTokens: false });
      return r.ok && r.value.length === 1 ? r.value[0] : null;
    };
    const words: string[] = [];
    const ids: number[] = [];
    for (const w of WORDS) {
      const id = await single(` ${w}`);
      if (id === null) continue;
      words.push(` ${w}`);
      ids.push(id);
    }
    if (words.length === 0) throw new Error(`model ${tokenizer.model}: no single-token filler word; is the tokenizer byte-level BPE?`);
    const bare = words[0].trimStart();
    const bareId = await single(bare);
    return new FillerText(words, Uint32Array.from(ids), bareId === null ? { text: words[0], id: ids[0] } : { text: bare, id: bareId });
  }

  /** The ids of the first `n` output tokens. */
  ids(n: number): Uint32Array {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = i === 0 ? this.first.id : this.wordIds[i % this.wordIds.length];
    return out;
  }

  /** Text of output tokens [from, to). */
  text(from: number, to: number): string {
    let out = "";
    for (let i = from; i < to; i++) out += i === 0 ? this.first.text : this.words[i % this.words.length];
    return out;
  }
}
