import { describe, expect, it } from "vitest";
import { EventQueue } from "./event-queue";
import { KvBatcher } from "./kv-batcher";
import { LruSet } from "./lru-set";
import { toIndexOps } from "./contenders";
import { Rng } from "../workloads/rng";

describe("EventQueue", () => {
  it("pops by time, then priority, then insertion order", () => {
    const q = new EventQueue<string>();
    q.push(5, 1, "t5-arrive");
    q.push(2, 1, "t2-arrive-a");
    q.push(5, 0, "t5-finish");
    q.push(2, 1, "t2-arrive-b");
    q.push(1, 9, "t1");
    const out: string[] = [];
    for (let e = q.pop(); e; e = q.pop()) out.push(e.event);
    expect(out).toEqual(["t1", "t2-arrive-a", "t2-arrive-b", "t5-finish", "t5-arrive"]);
    expect(q.peekTime()).toBe(Infinity);
  });

  it("matches a sort on random input", () => {
    const r = new Rng(9);
    const q = new EventQueue<number>();
    const items = Array.from({ length: 2000 }, (_, i) => ({ at: r.int(100), p: r.int(3), i }));
    for (const it of items) q.push(it.at, it.p, it.i);
    const expected = [...items].sort((a, b) => a.at - b.at || a.p - b.p || a.i - b.i).map((x) => x.i);
    const got: number[] = [];
    for (let e = q.pop(); e; e = q.pop()) got.push(e.event);
    expect(got).toEqual(expected);
  });

  it("refuses a non-finite time", () => {
    expect(() => new EventQueue<number>().push(Infinity, 0, 1)).toThrow();
  });
});

describe("LruSet", () => {
  it("evicts a chain tail first and keeps the most recent chains", () => {
    const lru = new LruSet(4);
    lru.touchChain(["a", "b", "c"]);
    expect(lru.leadingRun(["a", "b", "c", "d"])).toBe(3);
    lru.touchChain(["x", "y"]); // 5 keys: the oldest, c (a's chain tail), goes
    expect([lru.has("c"), lru.has("a"), lru.size]).toEqual([false, true, 4]);
    expect(lru.leadingRun(["a", "b", "c"])).toBe(2);
    expect(lru.leadingRun(["a", "b", "c"], 1)).toBe(1);
  });

  it("behaves like a reference LRU under churn (compaction included)", () => {
    const r = new Rng(3);
    const lru = new LruSet(50);
    const ref: string[] = []; // most recent last
    for (let step = 0; step < 5000; step++) {
      const chain = Array.from({ length: 1 + r.int(6) }, () => `k${r.int(120)}`).filter((k, i, a) => a.indexOf(k) === i);
      lru.touchChain(chain);
      for (let i = chain.length - 1; i >= 0; i--) {
        const at = ref.indexOf(chain[i]);
        if (at >= 0) ref.splice(at, 1);
        ref.push(chain[i]);
      }
      while (ref.length > 50) ref.shift();
      if (step % 97 === 0) for (let k = 0; k < 120; k++) expect(lru.has(`k${k}`)).toBe(ref.includes(`k${k}`));
    }
    expect(lru.size).toBe(ref.length);
  });
});

describe("KvBatcher", () => {
  it("opens a batch on its first event and cuts everything gathered since", () => {
    const b = new KvBatcher();
    expect(b.add("w", [])).toBe(false);
    expect(b.add("w", [{ type: "removed", keys: ["a"] }])).toBe(true);
    expect(b.add("w", [{ type: "cleared" }])).toBe(false);
    expect(b.add("v", [{ type: "cleared" }])).toBe(true);
    expect(b.cut("w")).toHaveLength(2);
    expect(b.cut("w")).toEqual([]);
  });
});

describe("toIndexOps", () => {
  it("maps engine events to index ops in order", () => {
    expect(
      toIndexOps([
        { type: "stored", keys: ["a", "b"], parent: null, tokens: new Uint32Array(32) },
        { type: "removed", keys: ["a"] },
        { type: "cleared" },
      ]),
    ).toEqual([{ op: "add", keys: ["a", "b"] }, { op: "remove", keys: ["a"] }, { op: "clear" }]);
  });
});
