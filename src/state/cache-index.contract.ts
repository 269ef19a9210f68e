/**
 * The contract every CacheIndex backend passes (house style 8). A backend's test file calls
 * describeCacheIndexContract with a factory that returns a fresh, empty index.
 */
import { afterEach, describe, expect, it } from "vitest";
import { blockKeys, chainRoot } from "../prefix/block-keys";
import type { CacheIndex } from "./cache-index";

export function chainOf(blocks: number, salt = "chain"): string[] {
  const tokens = Array.from({ length: blocks * 16 }, (_, i) => (i * 31 + salt.length * 7) % 50_000);
  return blockKeys(tokens, 16, chainRoot({ hashSeed: salt, model: "contract" }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function describeCacheIndexContract(backend: string, create: () => Promise<CacheIndex>): void {
  describe(`CacheIndex contract: ${backend}`, () => {
    let index: CacheIndex | undefined;
    const fresh = async () => (index = await create());
    afterEach(async () => {
      await index?.close();
      index = undefined;
    });

    const [a, b, c, d] = chainOf(4);

    it.each([
      { name: "empty index", stored: {}, expected: { w1: 0, w2: 0 } },
      { name: "full chain on one worker", stored: { w1: [a, b, c, d] }, expected: { w1: 4, w2: 0 } },
      { name: "leading runs of different lengths", stored: { w1: [a, b, c], w2: [a, b] }, expected: { w1: 3, w2: 2 } },
      { name: "a gap ends the run", stored: { w1: [a, c, d], w2: [b, c, d] }, expected: { w1: 1, w2: 0 } },
      { name: "store order does not matter", stored: { w1: [d, c, b, a] }, expected: { w1: 4, w2: 0 } },
    ])("lookup: $name", async ({ stored, expected }) => {
      const idx = await fresh();
      for (const [w, keys] of Object.entries(stored)) await idx.add(w, keys as string[]);
      const runs = await idx.lookup([a, b, c, d], ["w1", "w2"]);
      expect(Object.fromEntries(runs)).toEqual(expected);
    });

    it("answers only for the workers asked about", async () => {
      const idx = await fresh();
      await idx.add("w1", [a, b]);
      await idx.add("w2", [a]);
      expect(Object.fromEntries(await idx.lookup([a, b], ["w2", "w3"]))).toEqual({ w2: 1, w3: 0 });
      expect((await idx.lookup([a, b], [])).size).toBe(0);
    });

    it("empty chain gives 0 for everyone", async () => {
      const idx = await fresh();
      await idx.add("w1", [a]);
      expect(Object.fromEntries(await idx.lookup([], ["w1"]))).toEqual({ w1: 0 });
    });

    it("add is idempotent and remove drops only that worker's entries", async () => {
      const idx = await fresh();
      await idx.add("w1", [a, b]);
      await idx.add("w1", [a, b]);
      await idx.add("w2", [a, b]);
      await idx.remove("w1", [b]);
      expect(Object.fromEntries(await idx.lookup([a, b], ["w1", "w2"]))).toEqual({ w1: 1, w2: 2 });
      const stats = await idx.stats();
      expect(stats.workers.w1?.blocks).toBe(1);
      expect(stats.workers.w2?.blocks).toBe(2);
      expect(stats.entries).toBe(2);
    });

    it("remove of unknown keys or workers is a no-op", async () => {
      const idx = await fresh();
      await idx.add("w1", [a]);
      await idx.remove("w1", [d]);
      await idx.remove("nobody", [a]);
      expect(Object.fromEntries(await idx.lookup([a], ["w1"]))).toEqual({ w1: 1 });
    });

    it("clearWorker drops every entry of one worker only", async () => {
      const idx = await fresh();
      await idx.add("w1", [a, b, c]);
      await idx.add("w2", [a, b]);
      await idx.addSpeculative("w1", [d], 60_000);
      await idx.clearWorker("w1");
      expect(Object.fromEntries(await idx.lookup([a, b, c, d], ["w1", "w2"]))).toEqual({ w1: 0, w2: 2 });
      const stats = await idx.stats();
      expect(stats.workers.w1 ?? { blocks: 0, speculative: 0 }).toEqual({ blocks: 0, speculative: 0 });
      expect(stats.entries).toBe(2);
    });

    it("speculative entries count until they expire", async () => {
      const idx = await fresh();
      await idx.addSpeculative("w1", [a, b], 150);
      expect(Object.fromEntries(await idx.lookup([a, b], ["w1"]))).toEqual({ w1: 2 });
      expect((await idx.stats()).workers.w1?.speculative).toBe(2);
      await sleep(300);
      expect(Object.fromEntries(await idx.lookup([a, b], ["w1"]))).toEqual({ w1: 0 });
    });

    it("a store event confirms a speculative entry so it no longer expires", async () => {
      const idx = await fresh();
      await idx.addSpeculative("w1", [a, b], 150);
      await idx.add("w1", [a]);
      await sleep(300);
      expect(Object.fromEntries(await idx.lookup([a, b], ["w1"]))).toEqual({ w1: 1 });
      expect((await idx.stats()).workers.w1).toEqual({ blocks: 1, speculative: 0 });
    });

    it("speculation never downgrades a confirmed entry", async () => {
      const idx = await fresh();
      await idx.add("w1", [a]);
      await idx.addSpeculative("w1", [a, b], 100);
      await sleep(250);
      expect(Object.fromEntries(await idx.lookup([a, b], ["w1"]))).toEqual({ w1: 1 });
    });

    it("ttl 0 and empty key lists are no-ops", async () => {
      const idx = await fresh();
      await idx.addSpeculative("w1", [a], 0);
      await idx.add("w1", []);
      await idx.remove("w1", []);
      expect(Object.fromEntries(await idx.lookup([a], ["w1"]))).toEqual({ w1: 0 });
    });

    it("apply runs a batch of ops in order", async () => {
      const idx = await fresh();
      await idx.add("w1", [d]);
      await idx.apply("w1", [
        { op: "clear" },
        { op: "add", keys: [a, b, c] },
        { op: "remove", keys: [c] },
        { op: "add", keys: [c, d] },
        { op: "remove", keys: [d] },
      ]);
      expect(Object.fromEntries(await idx.lookup([a, b, c, d], ["w1"]))).toEqual({ w1: 3 });
      expect((await idx.stats()).workers.w1?.blocks).toBe(3);
      await idx.apply("w1", []);
      expect(Object.fromEntries(await idx.lookup([a, b, c, d], ["w1"]))).toEqual({ w1: 3 });
    });

    it("an add that names its parent stores its keys like one that does not, parent present or not", async () => {
      const idx = await fresh();
      await idx.apply("w1", [{ op: "add", keys: [a] }, { op: "add", keys: [b, c], parent: a }]);
      await idx.apply("w2", [{ op: "add", keys: [b, c], parent: a }]); // w2 holds no a: still stored
      expect(Object.fromEntries(await idx.lookup([a, b, c], ["w1", "w2"]))).toEqual({ w1: 3, w2: 0 });
      expect(Object.fromEntries(await idx.lookup([b, c], ["w2"]))).toEqual({ w2: 2 });
      expect((await idx.stats()).workers.w2?.blocks).toBe(2);
    });

    it("replaceWorker replaces, it does not add, and drops speculation", async () => {
      const idx = await fresh();
      await idx.add("w1", [a, b, c]);
      await idx.addSpeculative("w1", [d], 60_000);
      await idx.add("w2", [a, b]);
      await idx.replaceWorker("w1", [a, d]);
      expect(Object.fromEntries(await idx.lookup([a, b, c, d], ["w1", "w2"]))).toEqual({ w1: 1, w2: 2 });
      expect(Object.fromEntries(await idx.lookup([d], ["w1"]))).toEqual({ w1: 1 });
      expect((await idx.stats()).workers.w1).toEqual({ blocks: 2, speculative: 0 });
      await idx.replaceWorker("w1", []);
      expect((await idx.stats()).workers.w1 ?? { blocks: 0, speculative: 0 }).toEqual({ blocks: 0, speculative: 0 });
    });

    it("long chains stop early and stay exact", async () => {
      const idx = await fresh();
      const long = chainOf(2048, "long");
      await idx.add("w1", long.slice(0, 1500));
      await idx.add("w2", long.slice(0, 10));
      const runs = await idx.lookup(long, ["w1", "w2", "w3"]);
      expect(Object.fromEntries(runs)).toEqual({ w1: 1500, w2: 10, w3: 0 });
    });

    it("concurrent adds from many workers all land", async () => {
      const idx = await fresh();
      const workers = Array.from({ length: 16 }, (_, i) => `w${i}`);
      await Promise.all(workers.map((w, i) => idx.add(w, chainOf(8).slice(0, 1 + (i % 8)))));
      const runs = await idx.lookup(chainOf(8), workers);
      workers.forEach((w, i) => expect(runs.get(w)).toBe(1 + (i % 8)));
    });
  });
}
