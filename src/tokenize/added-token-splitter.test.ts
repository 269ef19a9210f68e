import { describe, expect, it } from "vitest";
import { AddedTokenSplitter } from "./added-token-splitter";

const splitter = new AddedTokenSplitter([
  { content: "<a>", id: 1 },
  { content: "<a><b>", id: 2 },
  { content: "<b>", id: 3 },
  { content: "a.b", id: 4 }, // regex metacharacters are literal
  { content: "", id: 9 }, // ignored
]);

describe("AddedTokenSplitter", () => {
  it.each<[string, (string | number)[]]>([
    ["", []],
    ["plain text", ["plain text"]],
    ["<a>", [1]],
    ["x<a>y", ["x", 1, "y"]],
    ["<a><b>", [2]], // longest at the same start
    ["<a><a><b>", [1, 2]], // leftmost first, then longest
    ["<b><a>", [3, 1]],
    ["axb a.b", ["axb ", 4]],
    ["<a<a>>", ["<a", 1, ">"]],
  ])("%j", (text, pieces) => {
    expect(splitter.split(text)).toEqual(pieces);
  });

  it("works without added tokens", () => {
    expect(new AddedTokenSplitter([]).split("abc")).toEqual(["abc"]);
    expect(new AddedTokenSplitter([]).split("")).toEqual([]);
  });
});

describe("AddedTokenSplitter, few first characters (indexOf) against many (the regex alone)", () => {
  // Two token sets with the same matches: the second adds five tokens with first characters of
  // their own that never occur in the texts, so it has too many first characters for indexOf.
  const tokens = [
    { content: "<|a|>", id: 1 },
    { content: "<|a|><|b|>", id: 2 },
    { content: "<|b|>", id: 3 },
    { content: "[x]", id: 4 },
    { content: "<", id: 5 },
    { content: "\ud83d\ude00", id: 6 }, // a surrogate pair: matched by code units, as the regex does
  ];
  const unseen = ["1", "2", "3", "4", "5"].map((c, i) => ({ content: `${c}!`, id: 10 + i }));
  const few = new AddedTokenSplitter(tokens);
  const many = new AddedTokenSplitter([...tokens, ...unseen]);
  const parts = ["<|a|>", "<|b|>", "<|", "|>", "<", "[x]", "[", "x", "a", " ", "\ud83d", "\ude00", "\ud83d\ude00", "é"];

  it("splits 2,000 random texts alike", () => {
    let seed = 5;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let n = 0; n < 2000; n++) {
      const text = Array.from({ length: Math.floor(random() * 12) }, () => parts[Math.floor(random() * parts.length)]).join("");
      expect(few.split(text), JSON.stringify(text)).toEqual(many.split(text));
    }
  });

  it("matches leftmost, then longest", () => {
    expect(few.split("x<|a|><|b|>y<<|b|>")).toEqual(["x", 2, "y", 5, 3]);
    expect(few.split("[[x]]\ud83d\ude00")).toEqual(["[", 4, "]", 6]);
  });
});
