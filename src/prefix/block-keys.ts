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
 * Keys of every full block of `tokens`, in chain order. `parent` is the chain root, or the key
 * (as 8 bytes) of the block before `tokens[0]` when continuing a chain.
 */
export function blockKeys(tokens: ArrayLike<number>, blockSize: number, parent: Buffer): BlockKey[] {
  if (!Number.isInteger(blockSize) || blockSize <= 0) throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
  if (parent.length !== KEY_BYTES) throw new RangeError(`parent key must be ${KEY_BYTES} bytes, got ${parent.length}`);
  const blocks = fullBlockCount(tokens.length, blockSize);
  const keys: BlockKey[] = new Array(blocks);
  // One scratch buffer per call: parent key followed by the block's tokens as uint32 LE.
  const scratch = Buffer.allocUnsafe(KEY_BYTES + 4 * blockSize);
  parent.copy(scratch, 0);
  for (let b = 0; b < blocks; b++) {
    let offset = KEY_BYTES;
    const start = b * blockSize;
    for (let t = 0; t < blockSize; t++) {
      const id = tokens[start + t];
      if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`token id out of range at ${start + t}: ${id}`);
      scratch.writeUInt32LE(id, offset);
      offset += 4;
    }
    const digest = oneShotHash("sha256", scratch, "buffer");
    digest.copy(scratch, 0, 0, KEY_BYTES); // the next block's parent
    keys[b] = digest.toString("hex", 0, KEY_BYTES);
  }
  return keys;
}

/** The 8 raw bytes of a key, for chaining from a stored key. */
export function keyBytes(key: BlockKey): Buffer {
  if (!/^[0-9a-f]{16}$/.test(key)) throw new RangeError(`not a block key: ${JSON.stringify(key)}`);
  return Buffer.from(key, "hex");
}
