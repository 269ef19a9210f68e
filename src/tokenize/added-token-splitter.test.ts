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
