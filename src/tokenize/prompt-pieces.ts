/**
 * A prompt's pieces (segmented-encoder.ts) and the names of the points after them, read from the
 * encoder's stream only as far as the keyer needs: a long new prompt decided on its head is cut
 * and digested up to its head on the decision's path, the rest after the answer (prompt-keyer.ts).
 *
 * A point is named by a chain of SHA-256 digests: the first of the chain root and the block size,
 * each next of the name before it and the piece's key prefixed by its length (names have a fixed
 * length, so no two key sequences run together the same way): equal names mean equal text up to
 * that point. One-shot crypto.hash() of a short string costs half what copying a running digest
 * at each point did (0.42 against 0.86 µs a point).
 */
import { createHash, hash } from "node:crypto";
import type { EncodePiece } from "./segmented-encoder";

export class PromptPieces {
  readonly pieces: EncodePiece[] = [];
  readonly points: string[] = [];
  /** Text characters in pieces [0, i], for each piece read. */
  private readonly ends: number[] = [];
  /** The name of the last point read (of the root before any). */
  private name: string;
  private done = false;

  /** `textLength`: the rendered text's length, for what is not read yet. */
  constructor(
    private readonly stream: Iterator<EncodePiece>,
    root: Uint8Array,
    blockSize: number,
    private readonly textLength: number,
  ) {
    this.name = createHash("sha256").update(root).update(`:${blockSize}`).digest("base64");
  }

  /** Reads on until the pieces read hold at least `chars` characters of text, or to the end. */
  readTo(chars: number): void {
    while (!this.done && this.charsTo(this.pieces.length) < chars) this.readOne();
  }

  readAll(): void {
    while (!this.done) this.readOne();
  }

  /** Text characters in pieces [0, i). */
  charsTo(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1];
  }

  /**
   * Text characters after piece `from` (its own included): exact once everything is read, else
   * the unread rest counted from the text's length (an added token's text among it counts too).
   */
  charsFrom(from: number): number {
    const read = this.charsTo(this.pieces.length);
    return read - this.charsTo(from) + (this.done ? 0 : Math.max(0, this.textLength - read));
  }

  /** The end of a head from `from`: the first piece boundary with at least `chars` of text before it (reads as needed). */
  headEnd(from: number, chars: number): number {
    const target = this.charsTo(from) + chars;
    this.readTo(target);
    let i = from;
    while (i < this.pieces.length && this.charsTo(i) < target) i++;
    return i;
  }

  private readOne(): void {
    const next = this.stream.next();
    if (next.done) {
      this.done = true;
      return;
    }
    const piece = next.value;
    this.name = hash("sha256", `${this.name}${piece.key.length}:${piece.key}`, "base64");
    this.pieces.push(piece);
    this.points.push(this.name);
    this.ends.push(this.charsTo(this.pieces.length - 1) + (piece.text?.length ?? 0));
  }
}

/**
 * Digests of the first `chars` characters of the texts a keyer has keyed, the last `capacity` of
 * them. A cached point past those characters exists only for a text that began the same way, so
 * a text whose beginning is not here has none: its pieces past the beginning need not be read to
 * find where to continue from. Forgetting a beginning only costs work (a point not found), never
 * a wrong key.
 */
export class SeenBeginnings {
  private readonly seen = new Map<string, true>(); // insertion order = LRU order

  constructor(
    readonly chars: number,
    private readonly capacity: number,
  ) {}

  /** Whether a text beginning like this one was keyed before; records this one. */
  check(text: string): boolean {
    const digest = createHash("sha256").update(text.length > this.chars ? text.slice(0, this.chars) : text).digest("base64");
    const known = this.seen.delete(digest);
    this.seen.set(digest, true);
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.keys().next().value!);
    return known;
  }
}
