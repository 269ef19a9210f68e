/**
 * JSON.parse of a chat body that repeats an earlier body's bytes up to the end of one of its
 * messages — the next turn of a conversation, or another question after a shared system prompt and
 * history — without decoding or parsing those bytes again: only the bytes after that message are.
 * A 32k-token body is ~131 kB; decoding and parsing it cost its tokenizer thread ~0.6 ms of the
 * ~2 ms a warm decision spends there (docs/benchmark.md).
 *
 * Why the result is JSON.parse's. A JSON parser's state after a prefix depends only on the prefix.
 * After the bytes of a remembered body up to the end of its message i, the parser is inside the
 * root object, inside the "messages" array, just after an object. So the new body is valid JSON
 * exactly when `{"<nonce>":[{}` followed by its remaining bytes is (the same state, under a key no
 * client can know), and that parse yields the messages after i (after the placeholder {}) and
 * every root field that follows the array. Only bodies whose messages are all objects are
 * remembered: after a `}` no byte can continue the element (after a number, `e5` could). Root
 * fields before "messages" are the remembered body's, its messages 0..i too (the same objects: the
 * parsers after this never write to the JSON they read). Later occurrences win as in JSON.parse: a
 * field after the array replaces one before it. Bodies whose root repeats a key are not remembered
 * (which occurrence JSON.parse keeps would have to be tracked per key), and a body whose tail names
 * "messages" again is parsed whole (that array replaces the whole one).
 *
 * A body is found among the last ones remembered (MAX_ENTRIES, as many as `budgetBytes` holds) by
 * comparing bytes, newest first: an older one is searched only when it shares more than the best
 * so far, by a binary search over its message ends (equality of a prefix is monotonic; each step
 * compares only the bytes past what is known equal). The memo keeps the bodies it remembers, and
 * their parsed strings (about twice their bytes again): callers must not change a body's bytes
 * afterwards.
 */
import { randomBytes } from "node:crypto";
import type { Json, JsonObject } from "./json-fields";

/** Message ends and root keys of a remembered body, read off its bytes (see scanBody). */
interface Remembered {
  readonly bytes: Buffer;
  readonly root: JsonObject;
  /** Byte offset just after each element of "messages". */
  readonly ends: readonly number[];
  /** Root keys that come before "messages" in the bytes. */
  readonly before: readonly string[];
}

export interface BodyPrefixMemoStats {
  /** Bodies parsed from a remembered prefix. */
  readonly hits: number;
  /** Bytes those hits did not decode or parse. */
  readonly bytesReused: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
/** Bytes compared first: most bodies that do not share a prefix differ here already. */
const QUICK_BYTES = 256;
/** Bodies remembered at most (each lookup may compare with each). */
const MAX_ENTRIES = 8;

// fatal, as the whole body's decoder; ignoreBOM: a U+FEFF after a message is a character that
// fails the parse, as in the whole body, not a byte-order mark to drop.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class BodyPrefixMemo {
  private readonly entries: Remembered[] = []; // oldest first
  private rememberedBytes = 0;
  private readonly nonce = randomBytes(16).toString("hex");
  private hits = 0;
  private bytesReused = 0;

  /**
   * `budgetBytes`: the remembered bodies' bytes together (a body over half of it is not
   * remembered); `minBytes`: smaller bodies are neither remembered nor looked up (parsing them
   * whole costs little).
   */
  constructor(
    private readonly budgetBytes: number,
    private readonly minBytes: number,
  ) {}

  stats(): BodyPrefixMemoStats {
    return { hits: this.hits, bytesReused: this.bytesReused };
  }

  /**
   * The body's JSON.parse result, built on the remembered body that shares the longest prefix of
   * whole messages with it; undefined when none does, or when the rest does not parse (the caller
   * parses the whole body, and reports its failure).
   */
  parse(body: Buffer): { readonly json: JsonObject; readonly reused: number } | undefined {
    if (body.length < this.minBytes) return undefined;
    let best: Remembered | undefined;
    let bestIndex = -1;
    let cut = 0; // bytes shared
    for (let k = this.entries.length - 1; k >= 0; k--) {
      const entry = this.entries[k];
      const i = longestSharedMessage(entry, body, cut);
      if (i >= 0) [best, bestIndex, cut] = [entry, i, entry.ends[i]];
    }
    if (best === undefined) return undefined;
    let tail: { [key: string]: Json };
    try {
      const parsed: unknown = JSON.parse(`{"${this.nonce}":[{}${utf8.decode(body.subarray(cut))}`);
      tail = parsed as { [key: string]: Json };
    } catch {
      return undefined;
    }
    const added = tail[this.nonce];
    if (!Array.isArray(added) || Object.prototype.hasOwnProperty.call(tail, "messages")) return undefined;
    const json: JsonObject = {};
    for (const key of best.before) defineField(json, key, best.root[key]);
    defineField(json, "messages", [...(best.root.messages as Json[]).slice(0, bestIndex + 1), ...added.slice(1)]);
    for (const key of Object.keys(tail)) if (key !== this.nonce) defineField(json, key, tail[key]);
    this.hits++;
    this.bytesReused += cut;
    return { json, reused: cut };
  }

  /** Remembers a body and its JSON.parse result (when it is a chat body this memo can reuse). */
  remember(body: Buffer, json: JsonObject): void {
    if (body.length < this.minBytes || 2 * body.length > this.budgetBytes || !Array.isArray(json.messages)) return;
    const scanned = scanBody(body);
    if (scanned === null || scanned.ends.length !== json.messages.length) return;
    this.entries.push({ bytes: body, root: json, ...scanned });
    this.rememberedBytes += body.length;
    while (this.rememberedBytes > this.budgetBytes || this.entries.length > MAX_ENTRIES) this.rememberedBytes -= this.entries.shift()!.bytes.length;
  }
}

/** JSON.parse's own-property semantics ("__proto__" is a plain key), later writes replacing earlier ones. */
function defineField(target: JsonObject, key: string, value: Json | undefined): void {
  if (value === undefined) return;
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The last message i whose end the body shares the bytes up to, if that end lies past `beyond`; else -1. */
function longestSharedMessage(entry: Remembered, body: Buffer, beyond: number): number {
  const { bytes, ends } = entry;
  let first = 0;
  while (first < ends.length && ends[first] <= beyond) first++;
  if (first === ends.length || body.length <= ends[first]) return -1;
  const quick = Math.min(QUICK_BYTES, ends[first]);
  if (bytes.compare(body, 0, quick, 0, quick) !== 0 || bytes.compare(body, quick, ends[first], quick, ends[first]) !== 0) return -1;
  let lo = first; // shares up to ends[lo]
  let hi = ends.length; // does not share up to ends[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    const [from, to] = [ends[lo], ends[mid]];
    if (body.length > to && bytes.compare(body, from, to, from, to) === 0) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The end of each "messages" element and the root keys before "messages", read off valid JSON
 * bytes (the caller parsed them); null when the root is not an object with one "messages" array
 * of objects, or repeats a key.
 */
export function scanBody(bytes: Buffer): { ends: number[]; before: string[] } | null {
  let i = skipSpace(bytes, 0);
  if (bytes[i] !== OPEN_BRACE) return null;
  i = skipSpace(bytes, i + 1);
  const keys = new Set<string>();
  const before: string[] = [];
  let ends: number[] | null = null;
  while (i < bytes.length && bytes[i] !== CLOSE_BRACE) {
    if (bytes[i] === COMMA) i = skipSpace(bytes, i + 1);
    if (bytes[i] !== QUOTE) return null;
    const keyEnd = skipString(bytes, i);
    const key = JSON.parse(bytes.toString("utf8", i, keyEnd)) as string;
    if (keys.has(key)) return null;
    keys.add(key);
    i = skipSpace(bytes, keyEnd);
    if (bytes[i] !== COLON) return null;
    i = skipSpace(bytes, i + 1);
    if (key === "messages") {
      if (bytes[i] !== OPEN_BRACKET) return null;
      ends = [];
      i = skipSpace(bytes, i + 1);
      while (bytes[i] !== CLOSE_BRACKET) {
        if (bytes[i] === COMMA) i = skipSpace(bytes, i + 1);
        if (bytes[i] !== OPEN_BRACE) return null;
        i = skipValue(bytes, i);
        ends.push(i);
        i = skipSpace(bytes, i);
      }
      i = skipSpace(bytes, i + 1);
      continue;
    }
    if (ends === null) before.push(key);
    i = skipSpace(bytes, skipValue(bytes, i));
  }
  return ends === null ? null : { ends, before };
}

function skipSpace(bytes: Buffer, i: number): number {
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return i;
}

/** From an opening quote to just after its closing one (a quote is escaped when an odd run of backslashes precedes it). */
function skipString(bytes: Buffer, i: number): number {
  let at = i + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, at);
    if (quote < 0) return bytes.length;
    let slashes = 0;
    while (bytes[quote - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

/** From the first byte of a value to just after its last. */
function skipValue(bytes: Buffer, i: number): number {
  const first = bytes[i];
  if (first === QUOTE) return skipString(bytes, i);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    while (i < bytes.length && bytes[i] !== COMMA && bytes[i] !== CLOSE_BRACE && bytes[i] !== CLOSE_BRACKET && bytes[i] > 0x20) i++;
    return i;
  }
  let depth = 0;
  for (;;) {
    const b = bytes[i];
    if (b === QUOTE) {
      i = skipString(bytes, i);
      continue;
    }
    if (b === OPEN_BRACE || b === OPEN_BRACKET) depth++;
    else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
    if (i >= bytes.length) return i;
  }
}
