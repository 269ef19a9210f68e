import { describe, expect, it } from "vitest";
import { PagedPrefixCache } from "./paged-prefix-cache";
import type { EngineKvEvent } from "./replica-model";

const BS = 2;
const k = (i: number) => i.toString(16).padStart(16, "0");
const toks = (blocks: number, base = 0) => Uint32Array.from({ length: blocks * BS }, (_, i) => base + i);

/** Allocates `n` blocks and caches them as the chain k(first)…, returning the block ids. */
function storeChain(c: PagedPrefixCache, first: number, n: number, parent: number | null = null): number[] {
  const blocks = c.allocate(n)!;
  c.cacheRun(blocks, Array.from({ length: n }, (_, i) => k(first + i)), parent === null ? null : k(parent), toks(n, first * BS));
  return blocks;
}

/** Events without token arrays, for compact expectations. */
function events(c: PagedPrefixCache): unknown[] {
  return c.takeEvents().map((e: EngineKvEvent) => (e.type === "stored" ? { stored: e.keys, parent: e.parent, tokens: e.tokens.length } : e.type === "removed" ? { removed: e.keys } : e));
}

interface Case {
  name: string;
  run: (c: PagedPrefixCache) => unknown;
  want: unknown;
}

const cases: Case[] = [
  {
    name: "a fresh cache hands out blocks in id order and holds nothing",
    run: (c) => ({ blocks: c.allocate(3), free: c.freeBlocks(), used: c.usedBlocks(), keys: c.cachedKeys() }),
    want: { blocks: [0, 1, 2], free: 3, used: 3, keys: [] },
  },
  {
    name: "allocation beyond the free queue fails and changes nothing",
    run: (c) => ({ got: c.allocate(7), free: c.freeBlocks() }),
    want: { got: null, free: 6 },
  },
  {
    name: "caching a run emits one stored event with its parent and exactly its tokens",
    run: (c) => {
      storeChain(c, 0, 2);
      storeChain(c, 2, 1, 1);
      return events(c);
    },
    want: [{ stored: [k(0), k(1)], parent: null, tokens: 4 }, { stored: [k(2)], parent: k(1), tokens: 2 }],
  },
  {
    name: "released blocks stay cached and hit",
    run: (c) => {
      c.release(storeChain(c, 0, 3));
      return { prefix: c.cachedPrefix([k(0), k(1), k(2), k(3)]), free: c.freeBlocks(), holds: c.holds(k(2)) };
    },
    want: { prefix: 3, free: 6, holds: true },
  },
  {
    name: "the hit stops at the first missing key and at maxBlocks",
    run: (c) => {
      storeChain(c, 0, 1);
      storeChain(c, 2, 1, 1);
      return [c.cachedPrefix([k(0), k(1), k(2)]), c.cachedPrefix([k(0)], 0), c.cachedPrefix([k(2)])];
    },
    want: [1, 0, 1],
  },
  {
    name: "touch pins: a refcount-0 block leaves the free queue, a pinned one costs nothing",
    run: (c) => {
      const a = storeChain(c, 0, 1);
      storeChain(c, 1, 1, 0);
      c.release(a);
      const before = { free: c.freeBlocks(), unpinned: c.unpinnedAmong([k(0), k(1)]) };
      const touched = c.touch([k(0), k(1)]);
      return { before, touched, after: c.freeBlocks() };
    },
    want: { before: { free: 5, unpinned: 1 }, touched: [0, 1], after: 4 },
  },
  {
    name: "eviction takes the least recently freed block first; a request's tail goes before its head",
    run: (c) => {
      c.allocate(2); // blocks 0, 1: never cached, pinned
      const chain = storeChain(c, 10, 3); // blocks 2, 3, 4
      c.release(chain); // queue: 5, 4, 3, 2
      events(c);
      c.allocate(3); // 5 (uncached), then 4 = k12, 3 = k11
      return { events: events(c), held: [c.holds(k(10)), c.holds(k(11)), c.holds(k(12))] };
    },
    want: { events: [{ removed: [k(12), k(11)] }], held: [true, false, false] },
  },
  {
    name: "a touched block is refreshed: released again, it goes to the tail",
    run: (c) => {
      const a = storeChain(c, 0, 1); // block 0
      const b = storeChain(c, 5, 1); // block 1
      c.release(a);
      c.release(b); // queue: 2 3 4 5 0 1
      c.release(c.touch([k(0)])); // queue: 2 3 4 5 1 0
      c.allocate(5);
      events(c);
      return { k0: c.holds(k(0)), k5: c.holds(k(5)) };
    },
    want: { k0: true, k5: false },
  },
  {
    name: "a second copy of a key is not reported, and splits the reported run",
    run: (c) => {
      storeChain(c, 1, 1, 0);
      events(c);
      const blocks = c.allocate(3)!;
      c.cacheRun(blocks, [k(0), k(1), k(2)], null, toks(3));
      return events(c);
    },
    want: [{ stored: [k(0)], parent: null, tokens: 2 }, { stored: [k(2)], parent: k(1), tokens: 2 }],
  },
  {
    name: "evicting one copy keeps the key; evicting the last copy removes it",
    run: (c) => {
      const first = storeChain(c, 0, 1);
      const second = c.allocate(1)!;
      c.cacheRun(second, [k(0)], null, toks(1));
      c.release(first);
      c.release(second);
      events(c);
      c.allocate(5); // 2 3 4 5, then block 0 (first copy)
      const afterOne = { held: c.holds(k(0)), events: events(c) };
      c.allocate(1); // block 1 (last copy)
      return { afterOne, afterAll: { held: c.holds(k(0)), events: events(c) } };
    },
    want: { afterOne: { held: true, events: [] }, afterAll: { held: false, events: [{ removed: [k(0)] }] } },
  },
  {
    name: "reset is refused while blocks are pinned, then clears every key",
    run: (c) => {
      const blocks = storeChain(c, 0, 2);
      events(c);
      const refused = c.reset();
      c.release(blocks);
      return { refused, done: c.reset(), keys: c.cachedKeys(), events: events(c) };
    },
    want: { refused: false, done: true, keys: [], events: [{ type: "cleared" }] },
  },
];

describe("PagedPrefixCache", () => {
  it.each(cases)("$name", ({ run, want }) => {
    expect(run(new PagedPrefixCache(6, BS))).toEqual(want);
  });

  it.each([
    { name: "releasing a block that is not pinned", run: (c: PagedPrefixCache) => c.release([0]) },
    { name: "touching a key that is not cached", run: (c: PagedPrefixCache) => c.touch([k(9)]) },
    { name: "caching a block twice", run: (c: PagedPrefixCache) => c.cacheRun([storeChain(c, 0, 1)[0]], [k(1)], null, toks(1)) },
    { name: "a run whose tokens do not match its blocks", run: (c: PagedPrefixCache) => c.cacheRun(c.allocate(1)!, [k(1)], null, toks(2)) },
  ])("throws on a bug: $name", ({ run }) => {
    expect(() => run(new PagedPrefixCache(6, BS))).toThrow();
  });
});
