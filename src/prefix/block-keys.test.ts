import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { blockKeyBytes, blockKeys, chainFrom, chainRoot, chainWords, fullBlockCount, isChainPrefix, keyBytes, keyChain } from "./block-keys";

interface VectorCase {
  name: string;
  hashSeed: string;
  model: string;
  lora: string;
  blockSize: number;
  tokens: number[];
  root: string;
  keys: string[];
}

const vectors = JSON.parse(readFileSync(join(__dirname, "..", "..", "data", "prefix-key-vectors.json"), "utf8")) as { cases: VectorCase[] };

describe("prefix keys match the frozen test vectors (data/prefix-key-vectors.json)", () => {
  it.each(vectors.cases)("$name", (c) => {
    const root = chainRoot({ hashSeed: c.hashSeed, model: c.model, lora: c.lora });
    expect(root.toString("hex")).toBe(c.root);
    expect(blockKeys(c.tokens, c.blockSize, root)).toEqual(c.keys);
  });
});

describe("blockKeys", () => {
  const root = chainRoot({ hashSeed: "0", model: "m" });
  const tokens = Array.from({ length: 64 }, (_, i) => i * 3);

  it("keys only full blocks", () => {
    expect(blockKeys(tokens.slice(0, 47), 16, root)).toHaveLength(2);
    expect(fullBlockCount(47, 16)).toBe(2);
  });

  it("a key names the whole prefix: equal prefixes give equal keys, a change ripples forward", () => {
    const a = blockKeys(tokens, 16, root);
    const changed = [...tokens];
    changed[20] += 1; // inside block 1
    const b = blockKeys(changed, 16, root);
    expect(b[0]).toBe(a[0]);
    expect(b.slice(1).every((k, i) => k !== a[i + 1])).toBe(true);
  });

  it("continues a chain from a stored key", () => {
    const whole = blockKeys(tokens, 16, root);
    const tail = blockKeys(tokens.slice(32), 16, keyBytes(whole[1]));
    expect(tail).toEqual(whole.slice(2));
  });

  it("accepts typed arrays and rejects ids that do not fit uint32", () => {
    expect(blockKeys(Uint32Array.from(tokens), 16, root)).toEqual(blockKeys(tokens, 16, root));
    expect(() => blockKeys([...Array(15).fill(1), -1], 16, root)).toThrow(RangeError);
    expect(() => blockKeys([...Array(15).fill(1), 2 ** 32], 16, root)).toThrow(RangeError);
    expect(() => blockKeys([...Array(15).fill(1), 1.5], 16, root)).toThrow(RangeError);
  });

  it("rejects a bad block size or parent", () => {
    expect(() => blockKeys(tokens, 0, root)).toThrow(RangeError);
    expect(() => blockKeys(tokens, 16, Buffer.alloc(4))).toThrow(RangeError);
    expect(() => keyBytes("xyz")).toThrow(RangeError);
  });

  it("keyChain: the hex keys, frozen, with each key's 64-bit value alongside", () => {
    const root = chainRoot({ hashSeed: "s", model: "m" });
    const tokens = Array.from({ length: 160 }, (_, i) => (i * 7919) % 151_000);
    const bytes = blockKeyBytes(tokens, 16, root);
    const chain = keyChain(bytes);
    expect([...chain]).toEqual(blockKeys(tokens, 16, root));
    // A view into a larger buffer (at an offset) reads its own keys.
    const tail = keyChain(bytes.subarray(8));
    expect([...tail]).toEqual(chain.slice(1));
    expect(Array.from(chainWords(tail)!)).toEqual(Array.from(chainWords(chain)!.subarray(2)));
    const words = chainWords(chain)!;
    chain.forEach((key, i) => expect([words[2 * i], words[2 * i + 1]]).toEqual([parseInt(key.slice(0, 8), 16), parseInt(key.slice(8), 16)]));
    expect(Object.isFrozen(chain)).toBe(true);
    // Copies and slices are plain arrays; words that do not match the keys are not used.
    expect(chainWords(chain.slice(1))).toBeUndefined();
    expect(chainWords(Object.assign(chain.slice(1), { words }))).toBeUndefined();
  });

  it("keyChain with a known prefix reuses its keys and makes only the rest; chainFrom and isChainPrefix", () => {
    const root = chainRoot({ hashSeed: "s", model: "m" });
    const tokens = Array.from({ length: 320 }, (_, i) => (i * 104_729) % 151_000);
    const bytes = blockKeyBytes(tokens, 16, root);
    const whole = keyChain(bytes);
    const head = keyChain(bytes.subarray(0, 12 * 8));
    const extended = keyChain(bytes, head);
    expect([...extended]).toEqual([...whole]);
    expect(Array.from(chainWords(extended)!)).toEqual(Array.from(chainWords(whole)!));
    expect(extended[11]).toBe(head[11]); // the same string, not a copy
    // A chain these bytes do not begin with is not used (another prompt's head, or a longer one).
    const other = keyChain(blockKeyBytes(tokens.map((t) => t + 1), 16, root).subarray(0, 12 * 8));
    expect([...keyChain(bytes, other)]).toEqual([...whole]);
    expect([...keyChain(bytes.subarray(0, 8 * 8), head)]).toEqual(whole.slice(0, 8));
    const rest = chainFrom(whole, 12);
    expect([...rest]).toEqual(whole.slice(12));
    expect(Array.from(chainWords(rest)!)).toEqual(Array.from(chainWords(whole)!.subarray(24)));
    expect(chainFrom(whole.slice(0), 12)).toEqual(whole.slice(12)); // a plain array stays plain
    expect(isChainPrefix(head, whole)).toBe(true);
    expect(isChainPrefix(whole, head)).toBe(false);
    expect(isChainPrefix(other, whole)).toBe(false);
    expect(isChainPrefix([], whole)).toBe(true);
  });
});
