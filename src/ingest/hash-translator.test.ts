import { describe, expect, it } from "vitest";
import { blockKeys, chainRoot, keyBytes } from "../prefix/block-keys";
import { HashTranslator, type HashTranslatorOptions } from "./hash-translator";
import type { BlockRemovedEvent, BlockStoredEvent, VllmKvEvent, VllmKvEventBatch } from "./vllm-kv-events";

const BS = 4;
const NS = { hashSeed: "seed", model: "m" };
const opts: HashTranslatorOptions = { ...NS, blockSize: BS };
const root = chainRoot(NS);
const toks = (n: number, base = 0): number[] => Array.from({ length: n }, (_, i) => base + i);

function stored(hashes: string[], parent: string | null, tokenIds: number[], extra: Partial<BlockStoredEvent> = {}): BlockStoredEvent {
  return { type: "BlockStored", blockHashes: hashes, parentBlockHash: parent, tokenIds, blockSize: BS, loraId: null, loraName: null, medium: "GPU", groupIdx: null, kvCacheSpecKind: null, ...extra };
}
function removed(hashes: string[], extra: Partial<BlockRemovedEvent> = {}): BlockRemovedEvent {
  return { type: "BlockRemoved", blockHashes: hashes, medium: null, groupIdx: null, ...extra };
}
function batch(events: VllmKvEvent[], dpRank: number | null = 0): VllmKvEventBatch {
  return { ts: 0, events, dpRank, unknownEvents: 0 };
}

describe("HashTranslator", () => {
  it("keys a run from the chain root, and continues a chain from a known parent", () => {
    const t = new HashTranslator(opts);
    const all = toks(5 * BS);
    const expected = blockKeys(all, BS, root);
    const first = t.translate(batch([stored(["i:1", "i:2", "i:3"], null, all.slice(0, 3 * BS))]));
    const second = t.translate(batch([stored(["i:4", "i:5"], "i:3", all.slice(3 * BS))]));
    expect(first).toEqual({ ops: [{ op: "add", keys: expected.slice(0, 3) }], issues: [], unknownRemovals: 0 });
    expect(second.ops).toEqual([{ op: "add", keys: expected.slice(3), parent: expected[2] }]);
    expect(t.size()).toBe(5);
  });

  it("works the same with bytes hashes and hashes above 2^53", () => {
    const t = new HashTranslator(opts);
    const big = `i:${2n ** 64n - 1n}`;
    const bytes = `b:${"ab".repeat(32)}`;
    t.translate(batch([stored([big], null, toks(BS))]));
    const r = t.translate(batch([stored([bytes], big, toks(BS, 50))]));
    const parent = blockKeys(toks(BS), BS, root)[0];
    expect(r.ops).toEqual([{ op: "add", keys: blockKeys(toks(BS, 50), BS, keyBytes(parent)), parent }]);
  });

  it("roots a LoRA adapter's chain in its own namespace", () => {
    const t = new HashTranslator(opts);
    const r = t.translate(batch([stored(["i:1"], null, toks(BS), { loraId: 7, loraName: "ad" })]));
    expect(r.ops).toEqual([{ op: "add", keys: blockKeys(toks(BS), BS, chainRoot({ ...NS, lora: "ad" })) }]);
    expect(r.ops).not.toEqual([{ op: "add", keys: blockKeys(toks(BS), BS, root) }]);
  });

  const untranslatable: { name: string; event: BlockStoredEvent; reason: RegExp }[] = [
    { name: "unknown parent", event: stored(["i:2"], "i:99", toks(BS)), reason: /unknown parent i:99/ },
    { name: "lora id without a name (older vLLM)", event: stored(["i:2"], null, toks(BS), { loraId: 3 }), reason: /lora_id 3/ },
    { name: "tokens do not cover the blocks", event: stored(["i:2", "i:3"], null, toks(BS + 1)), reason: /5 token ids for 2 blocks/ },
  ];
  it.each(untranslatable)("skips and reports: $name", ({ event, reason }) => {
    const t = new HashTranslator(opts);
    const r = t.translate(batch([event]));
    expect(r.ops).toEqual([]);
    expect(r.issues).toEqual([{ kind: "untranslatable", event: 0, reason: expect.stringMatching(reason) }]);
    expect(t.size()).toBe(0);
  });

  it("rejects a block size other than the configured one", () => {
    const r = new HashTranslator(opts).translate(batch([stored(["i:1"], null, toks(8), { blockSize: 8 })]));
    expect(r.ops).toEqual([]);
    expect(r.issues).toEqual([{ kind: "rejected", event: 0, reason: "block_size 8 ≠ configured 4" }]);
  });

  it("removes known hashes, counts unknown ones, and forgets them", () => {
    const t = new HashTranslator(opts);
    const keys = blockKeys(toks(2 * BS), BS, root);
    t.translate(batch([stored(["i:1", "i:2"], null, toks(2 * BS))]));
    const r = t.translate(batch([removed(["i:2", "i:77"])]));
    expect(r).toEqual({ ops: [{ op: "remove", keys: [keys[1]] }], issues: [], unknownRemovals: 1 });
    expect(t.size()).toBe(1);
    expect(t.translate(batch([stored(["i:3"], "i:2", toks(BS))])).issues[0].kind).toBe("untranslatable");
  });

  it("AllBlocksCleared clears the index and the table", () => {
    const t = new HashTranslator(opts);
    t.translate(batch([stored(["i:1"], null, toks(BS))]));
    const r = t.translate(batch([{ type: "AllBlocksCleared" }, stored(["i:2"], "i:1", toks(BS))]));
    expect(r.ops).toEqual([{ op: "clear" }]);
    expect(r.issues.map((i) => i.kind)).toEqual(["untranslatable"]);
    expect(t.size()).toBe(0);
  });

  it("merges adjacent ops of one kind and keeps event order", () => {
    const t = new HashTranslator(opts);
    const k = blockKeys(toks(3 * BS), BS, root);
    const r = t.translate(
      batch([stored(["i:1"], null, toks(BS)), stored(["i:2"], "i:1", toks(BS, BS)), removed(["i:1"]), stored(["i:3"], "i:2", toks(BS, 2 * BS))]),
    );
    expect(r.ops).toEqual([{ op: "add", keys: [k[0], k[1]] }, { op: "remove", keys: [k[0]] }, { op: "add", keys: [k[2]], parent: k[1] }]);
  });

  it("merges a continuation only into the chain it continues", () => {
    const t = new HashTranslator(opts);
    const a = blockKeys(toks(3 * BS), BS, root);
    const b = blockKeys(toks(2 * BS, 100), BS, root);
    t.translate(batch([stored(["i:1"], null, toks(BS))]));
    const r = t.translate(
      batch([
        stored(["i:2"], "i:1", toks(BS, BS)), // continues a[0]
        stored(["i:3"], "i:2", toks(BS, 2 * BS)), // continues the op before: merged
        stored(["j:1"], null, toks(BS, 100)), // a new chain: not merged into a continuation
        stored(["j:2"], "j:1", toks(BS, 100 + BS)), // continues it: merged into it
      ]),
    );
    expect(r.ops).toEqual([
      { op: "add", keys: [a[1], a[2]], parent: a[0] },
      { op: "add", keys: [b[0], b[1]] },
    ]);
  });

  it("ignores CPU-offload media, applies GPU and unspecified", () => {
    const t = new HashTranslator(opts);
    const r = t.translate(batch([stored(["i:1"], null, toks(BS), { medium: "CPU" }), stored(["i:2"], null, toks(BS, 9), { medium: null }), removed(["i:2"], { medium: "CPU" })]));
    expect(r.ops).toEqual([{ op: "add", keys: blockKeys(toks(BS, 9), BS, root) }]);
    expect(r.issues.map((i) => `${i.kind}:${i.reason}`)).toEqual(["ignored:medium CPU", "ignored:medium CPU"]);
  });

  it("ignores cache groups that are not full attention, learned from their store events", () => {
    const t = new HashTranslator(opts);
    const full = stored(["i:1"], null, toks(BS), { groupIdx: 0, kvCacheSpecKind: "full_attention" });
    const swa = stored(["i:1"], null, toks(BS), { groupIdx: 1, kvCacheSpecKind: "sliding_window" });
    const r = t.translate(batch([full, swa, removed(["i:1"], { groupIdx: 1 })]));
    expect(r.ops).toEqual([{ op: "add", keys: blockKeys(toks(BS), BS, root) }]);
    expect(r.issues.map((i) => i.kind)).toEqual(["ignored", "ignored"]);
    expect(t.translate(batch([removed(["i:1"], { groupIdx: 0 })])).ops).toHaveLength(1);
  });

  it("keeps one table per dp rank", () => {
    const t = new HashTranslator(opts);
    t.translate(batch([stored(["i:1"], null, toks(BS))], 0));
    expect(t.translate(batch([stored(["i:2"], "i:1", toks(BS))], 1)).issues[0].kind).toBe("untranslatable");
    expect(t.translate(batch([stored(["i:2"], "i:1", toks(BS))], 0)).issues).toEqual([]);
  });

  it("caps the table: the oldest mappings go and their keys are removed from the index", () => {
    const t = new HashTranslator({ ...opts, maxEntries: 4 });
    const k = blockKeys(toks(6 * BS), BS, root);
    t.translate(batch([stored(["i:1", "i:2", "i:3"], null, toks(3 * BS))]));
    const r = t.translate(batch([stored(["i:4", "i:5", "i:6"], "i:3", toks(3 * BS, 3 * BS))]));
    expect(r.ops).toEqual([{ op: "add", keys: k.slice(3), parent: k[2] }, { op: "remove", keys: [k[0], k[1]] }]);
    expect(t.size()).toBe(4);
    expect(t.translate(batch([removed(["i:1"])])).unknownRemovals).toBe(1);
  });

  it("reset() forgets every rank", () => {
    const t = new HashTranslator(opts);
    t.translate(batch([stored(["i:1"], null, toks(BS))], 0));
    t.translate(batch([stored(["i:1"], null, toks(BS))], 1));
    t.reset();
    expect(t.size()).toBe(0);
  });
});
