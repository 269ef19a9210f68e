/**
 * Prefix keys: one 64-bit key per full block of `blockSize` token ids, chained so that a key names
 * the whole prefix up to and including its block (spec and test vectors: docs/prefix-keys.md,
 * data/prefix-key-vectors.json — the Python plugin implements the same function).
 *
 *   root    = SHA-256("prefix-router/v1" 0x00 hashSeed 0x00 model 0x00 lora)[0..8)
 *   key[i]  = SHA-256(key[i-1] ‖ uint32le(token) for each token of block i)[0..8)   (key[-1] = root)
 *
 * A trailing partial block is not keyed: vLLM caches only full blocks.
 */
import { createHash, hash as oneShotHash } from "node:crypto";

/** 16 lowercase hex digits: the first 8 bytes of a SHA-256 digest. */
export type BlockKey = string;

export const KEY_BYTES = 8;
const DOMAIN = "prefix-router/v1";

export interface ChainNamespace {
  readonly hashSeed: string;
  readonly model: string;
  /** LoRA adapter name; "" (or absent) for the base model. */
  readonly lora?: string;
}

/** The 8-byte parent of block 0 for one (seed, model, adapter) namespace. */
export function chainRoot(ns: ChainNamespace): Buffer {
  const h = createHash("sha256");
  h.update(DOMAIN);
  h.update(Buffer.of(0));
  h.update(ns.hashSeed, "utf8");
  h.update(Buffer.of(0));
  h.update(ns.model, "utf8");
  h.update(Buffer.of(0));
  h.update(ns.lora ?? "", "utf8");
  return h.digest().subarray(0, KEY_BYTES);
}

/** Number of full blocks in a prompt of `tokenCount` tokens. */
export function fullBlockCount(tokenCount: number, blockSize: number): number {
  return Math.floor(tokenCount / blockSize);
}

/**
 * Block keys as bytes: KEY_BYTES per key, in chain order, one allocation for the whole chain. The
 * decision path keeps keys in this form; hex strings (BlockKey) are made only at the index boundary.
 */
export type BlockKeyBytes = Uint8Array;

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/**
 * Hashes `blocks` full blocks of `tokens` starting at `start`, chaining from `parent` (8 bytes), into
 * `out` from byte `outOffset` on. Ids must already be known to fit uint32 (a Uint32Array, or checked
 * by the caller). Returns nothing: the last key written is the parent of the next block.
 */
export function hashBlocksInto(tokens: Uint32Array, start: number, blocks: number, blockSize: number, parent: Uint8Array, out: Uint8Array, outOffset: number): void {
  if (parent.length !== KEY_BYTES) throw new RangeError(`parent key must be ${KEY_BYTES} bytes, got ${parent.length}`);
  // One scratch buffer per call: parent key followed by the block's tokens as uint32 LE.
  const scratch = Buffer.allocUnsafe(KEY_BYTES + 4 * blockSize);
  scratch.set(parent, 0);
  const words = LITTLE_ENDIAN ? new Uint32Array(scratch.buffer, scratch.byteOffset + KEY_BYTES, blockSize) : null;
  for (let b = 0; b < blocks; b++) {
    const from = start + b * blockSize;
    if (words) words.set(tokens.subarray(from, from + blockSize));
    else for (let t = 0; t < blockSize; t++) scratch.writeUInt32LE(tokens[from + t], KEY_BYTES + 4 * t);
    const digest = oneShotHash("sha256", scratch, "buffer");
    scratch.set(digest.subarray(0, KEY_BYTES), 0); // the next block's parent
    out.set(scratch.subarray(0, KEY_BYTES), outOffset + b * KEY_BYTES);
  }
}

/** Keys of every full block of `tokens` as bytes (see blockKeys). */
export function blockKeyBytes(tokens: ArrayLike<number>, blockSize: number, parent: Uint8Array): BlockKeyBytes {
  if (!Number.isInteger(blockSize) || blockSize <= 0) throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
  if (parent.length !== KEY_BYTES) throw new RangeError(`parent key must be ${KEY_BYTES} bytes, got ${parent.length}`);
  const blocks = fullBlockCount(tokens.length, blockSize);
  const ids = tokens instanceof Uint32Array ? tokens : checkedIds(tokens, blocks * blockSize);
  const out = new Uint8Array(blocks * KEY_BYTES);
  hashBlocksInto(ids, 0, blocks, blockSize, parent, out, 0);
  return out;
}

/** The first `count` ids as a Uint32Array; throws RangeError on an id that is not a uint32. */
function checkedIds(tokens: ArrayLike<number>, count: number): Uint32Array {
  const ids = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const id = tokens[i];
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`token id out of range at ${i}: ${id}`);
    ids[i] = id;
  }
  return ids;
}

/**
 * A chain as the router hands it around for one decision: hex keys (what maps, headers and Redis
 * take) with their 64-bit values alongside — words[2i] and words[2i + 1] are key i's high and low
 * 32 bits, the two halves of its 16 hex digits — so in-process consumers (the memory index, key
 * popularity) need not parse the hex again. Frozen, so the words cannot fall out of step with the
 * keys; a copy or a slice is a plain BlockKey[] without them.
 */
export type KeyChain = readonly BlockKey[] & { readonly words?: Uint32Array };

/** The 64-bit values of a chain's keys, when it carries them (see KeyChain). */
export function chainWords(keys: readonly BlockKey[]): Uint32Array | undefined {
  const words = (keys as KeyChain).words;
  return words !== undefined && words.length === 2 * keys.length ? words : undefined;
}

/** Hex keys (the index's form) of a chain of key bytes. Each string owns its characters. */
export function hexKeys(bytes: BlockKeyBytes): BlockKey[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keys: BlockKey[] = new Array(bytes.byteLength / KEY_BYTES);
  for (let i = 0; i < keys.length; i++) keys[i] = buf.toString("hex", i * KEY_BYTES, (i + 1) * KEY_BYTES);
  return keys;
}

/**
 * The chain's hex keys with their 64-bit values alongside, frozen (see KeyChain). Unlike
 * hexKeys(), the keys are slices of one hex string: a chain lives for one decision (and the
 * speculation overlay's few milliseconds), so it pins nothing for long, and this is ~8× faster
 * than a string per key (2,048 keys: 16 µs against 136 µs). With `known`, a chain these bytes
 * begin with, its keys are reused and only the rest is made.
 */
export function keyChain(bytes: BlockKeyBytes, known?: KeyChain): KeyChain {
  const count = bytes.byteLength / KEY_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keys: BlockKey[] = new Array(count);
  const words = new Uint32Array(2 * count);
  for (let i = 0; i < count; i++) {
    words[2 * i] = view.getUint32(i * KEY_BYTES);
    words[2 * i + 1] = view.getUint32(i * KEY_BYTES + 4);
  }
  // Keys are chained: the same last key means the same prefix, whose strings are reused.
  const reused = known !== undefined && continues(words, known) ? known.length : 0;
  for (let i = 0; i < reused; i++) keys[i] = known![i];
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset + reused * KEY_BYTES, (count - reused) * KEY_BYTES).toString("hex");
  for (let i = reused; i < count; i++) keys[i] = hex.slice(2 * KEY_BYTES * (i - reused), 2 * KEY_BYTES * (i - reused + 1));
  return frozenChain(keys, words);
}

/** Whether the chain of `words` begins with `prefix` (its last key, chained, stands for all of it). */
function continues(words: Uint32Array, prefix: KeyChain): boolean {
  const known = chainWords(prefix);
  const n = prefix.length;
  if (known === undefined || n === 0 || 2 * n > words.length) return false;
  return words[2 * n - 2] === known[2 * n - 2] && words[2 * n - 1] === known[2 * n - 1];
}

/** Whether `prefix` is a beginning of `chain` (by its last key: keys are chained). */
export function isChainPrefix(prefix: readonly BlockKey[], chain: readonly BlockKey[]): boolean {
  return prefix.length <= chain.length && (prefix.length === 0 || prefix[prefix.length - 1] === chain[prefix.length - 1]);
}

/** The chain's keys from `from` on, with their 64-bit values when the chain carries them. */
export function chainFrom(chain: KeyChain, from: number): KeyChain {
  const words = chainWords(chain);
  return words === undefined ? chain.slice(from) : frozenChain(chain.slice(from), words.subarray(2 * from));
}

function frozenChain(keys: BlockKey[], words: Uint32Array): KeyChain {
  // Not enumerable: the chain still compares, spreads and serialises as the plain array of keys.
  return Object.freeze(Object.defineProperty(keys, "words", { value: words, enumerable: false }));
}

/**
 * Keys of every full block of `tokens`, in chain order. `parent` is the chain root, or the key
 * (as 8 bytes) of the block before `tokens[0]` when continuing a chain.
 */
export function blockKeys(tokens: ArrayLike<number>, blockSize: number, parent: Uint8Array): BlockKey[] {
  return hexKeys(blockKeyBytes(tokens, blockSize, parent));
}

/** The 8 raw bytes of a key, for chaining from a stored key. */
export function keyBytes(key: BlockKey): Buffer {
  if (!/^[0-9a-f]{16}$/.test(key)) throw new RangeError(`not a block key: ${JSON.stringify(key)}`);
  return Buffer.from(key, "hex");
}
