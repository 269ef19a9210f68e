import { describe, expect, it } from "vitest";
import { CodeStack } from "./code-stack";

describe("CodeStack", () => {
  it("pops what was pushed, last first, across chunk boundaries, like an array of the same pushes and pops", () => {
    const stack = new CodeStack();
    const reference: number[] = [];
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    // Codes above 2^32 (block id × 65,536 + slot), runs of pushes long enough to fill chunks of every size.
    for (let round = 0; round < 60; round++) {
      const pushes = Math.floor(random() * 20_000);
      for (let i = 0; i < pushes; i++) {
        const code = Math.floor(random() * 2 ** 40) * 65_536 + (i % 65_536);
        stack.push(code);
        reference.push(code);
      }
      const pops = Math.floor(random() * 22_000);
      for (let i = 0; i < pops; i++) expect(stack.pop()).toBe(reference.pop());
      expect(stack.length).toBe(reference.length);
    }
    while (reference.length > 0) expect(stack.pop()).toBe(reference.pop());
    expect(stack.pop()).toBeUndefined();
    expect(stack.length).toBe(0);
    stack.push(5);
    expect(stack.pop()).toBe(5);
  });
});
