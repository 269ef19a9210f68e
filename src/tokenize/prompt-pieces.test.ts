/** PromptPieces reads a piece stream only as far as asked; SeenBeginnings remembers text beginnings, boundedly. */
import { describe, expect, it } from "vitest";
import { PromptPieces, SeenBeginnings } from "./prompt-pieces";
import type { EncodePiece } from "./segmented-encoder";

const ROOT = new Uint8Array(8);

/** A stream of text pieces of the given lengths (an added token where the length is 0), counting reads. */
function stream(lengths: number[]) {
  let read = 0;
  function* gen(): Generator<EncodePiece> {
    for (const [i, n] of lengths.entries()) {
      read++;
      yield n === 0 ? { key: `#${i}`, ids: Uint32Array.of(i), text: null } : { key: `t${i}:${n}`, ids: null, text: "x".repeat(n) };
    }
  }
  return { gen: gen(), read: () => read };
}

describe("PromptPieces", () => {
  it("reads only as far as asked, and counts characters read and unread", () => {
    const s = stream([0, 1000, 1000, 0, 3000, 3000]);
    const cut = new PromptPieces(s.gen, ROOT, 16, 8020);
    cut.readTo(1500);
    expect(s.read()).toBe(3);
    expect(cut.charsTo(3)).toBe(2000);
    // 2,000 read after piece 0; the rest counted from the text's length.
    expect(cut.charsFrom(0)).toBe(8020);
    expect(cut.headEnd(1, 2500)).toBe(5);
    expect(s.read()).toBe(5);
    cut.readAll();
    expect(s.read()).toBe(6);
    expect(cut.charsFrom(3)).toBe(6000);
    expect(cut.points).toHaveLength(6);
  });

  it("names equal prefixes alike and different ones apart", () => {
    const a = new PromptPieces(stream([0, 10, 20]).gen, ROOT, 16, 30);
    const b = new PromptPieces(stream([0, 10, 21]).gen, ROOT, 16, 31);
    const c = new PromptPieces(stream([0, 10, 20]).gen, ROOT, 32, 30);
    [a, b, c].forEach((p) => p.readAll());
    expect(b.points.slice(0, 2)).toEqual(a.points.slice(0, 2));
    expect(b.points[2]).not.toBe(a.points[2]);
    expect(c.points[0]).not.toBe(a.points[0]); // the block size is part of the name
  });
});

describe("SeenBeginnings", () => {
  it("knows a text by its first characters only, and forgets the least recent past its capacity", () => {
    const seen = new SeenBeginnings(4, 2);
    expect(seen.check("abcd-one")).toBe(false);
    expect(seen.check("abcd-two")).toBe(true);
    expect(seen.check("abcX")).toBe(false);
    expect(seen.check("abcd")).toBe(true); // touched: now the most recent
    expect(seen.check("zzzz")).toBe(false); // evicts "abcX"
    expect(seen.check("abcd...")).toBe(true);
    expect(seen.check("abcX")).toBe(false);
  });
});
