import { Encoder } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import { decodeKvEventBatch, type VllmKvEventBatch } from "./vllm-kv-events";

const pack = (value: unknown): Uint8Array => new Encoder({ useBigInt64: true }).encode(value);
const tokens = Array.from({ length: 32 }, (_, i) => 1000 + i);
const BIG = 2n ** 64n - 1n; // above 2^53: must stay exact
const BIG2 = 2n ** 63n + 12345n;
const digest = Uint8Array.from({ length: 32 }, (_, i) => i);
const digestHex = Buffer.from(digest).toString("hex");

function decoded(payload: Uint8Array): VllmKvEventBatch {
  const r = decodeKvEventBatch(payload);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.detail}`);
  return r.batch;
}

describe("decodeKvEventBatch: accepted shapes", () => {
  const cases: { name: string; payload: unknown; expected: Partial<VllmKvEventBatch> & { events: unknown[] } }[] = [
    {
      name: "oldest array_like: [ts, events], BlockStored without medium/lora_name, BlockRemoved without medium",
      payload: [1.5, [["BlockStored", [1n, BIG], null, tokens, 16, null], ["BlockRemoved", [1n]], ["AllBlocksCleared"]]],
      expected: {
        ts: 1.5,
        dpRank: null,
        events: [
          { type: "BlockStored", blockHashes: ["i:1", `i:${BIG}`], parentBlockHash: null, tokenIds: tokens, blockSize: 16, loraId: null, loraName: null, medium: null, groupIdx: null, kvCacheSpecKind: null },
          { type: "BlockRemoved", blockHashes: ["i:1"], medium: null, groupIdx: null },
          { type: "AllBlocksCleared" },
        ],
      },
    },
    {
      name: "array_like with dp_rank, medium, lora_name and trailing defaults",
      payload: [2, [["BlockStored", [BIG2], 7, tokens.slice(0, 16), 16, 3, "GPU", "ad", null, 0, "full_attention"], ["BlockRemoved", [BIG2], "GPU", 0]], 1],
      expected: {
        dpRank: 1,
        events: [
          { type: "BlockStored", blockHashes: [`i:${BIG2}`], parentBlockHash: "i:7", tokenIds: tokens.slice(0, 16), blockSize: 16, loraId: 3, loraName: "ad", medium: "GPU", groupIdx: 0, kvCacheSpecKind: "full_attention" },
          { type: "BlockRemoved", blockHashes: [`i:${BIG2}`], medium: "GPU", groupIdx: 0 },
        ],
      },
    },
    {
      name: "map form (newer vLLM), bytes hashes, unknown fields ignored",
      payload: {
        ts: 3.25,
        data_parallel_rank: 0,
        events: [
          { type: "BlockStored", block_hashes: [digest], parent_block_hash: digest, token_ids: tokens.slice(0, 16), block_size: 16, lora_id: null, medium: "GPU", lora_name: null, extra_keys: [null], future_field: 1 },
          { type: "BlockRemoved", block_hashes: [digest], medium: "CPU" },
          { type: "AllBlocksCleared" },
        ],
      },
      expected: {
        ts: 3.25,
        dpRank: 0,
        events: [
          { type: "BlockStored", blockHashes: [`b:${digestHex}`], parentBlockHash: `b:${digestHex}`, tokenIds: tokens.slice(0, 16), blockSize: 16, loraId: null, loraName: null, medium: "GPU", groupIdx: null, kvCacheSpecKind: null },
          { type: "BlockRemoved", blockHashes: [`b:${digestHex}`], medium: "CPU", groupIdx: null },
          { type: "AllBlocksCleared" },
        ],
      },
    },
    {
      name: "map batch without data_parallel_rank (omitted default), signed hash of the oldest vLLM",
      payload: { ts: 0, events: [{ type: "BlockRemoved", block_hashes: [-5, 5], medium: null }] },
      expected: { dpRank: null, events: [{ type: "BlockRemoved", blockHashes: ["i:-5", "i:5"], medium: null, groupIdx: null }] },
    },
  ];
  it.each(cases)("$name", ({ payload, expected }) => {
    expect(decoded(pack(payload))).toMatchObject(expected);
  });

  it("keeps a uint64 hash exact whether msgpack carries it as uint64 or a small int", () => {
    const batch = decoded(pack([0, [["BlockRemoved", [BIG, 2n ** 53n + 1n, 3]]]]));
    expect(batch.events[0]).toMatchObject({ blockHashes: ["i:18446744073709551615", "i:9007199254740993", "i:3"] });
  });

  it("skips and counts event types it does not know", () => {
    const batch = decoded(pack([0, [["BlockMoved", 1], { type: "Other" }, ["AllBlocksCleared"]]]));
    expect(batch.events).toEqual([{ type: "AllBlocksCleared" }]);
    expect(batch.unknownEvents).toBe(2);
  });
});

describe("decodeKvEventBatch: malformed input is a value", () => {
  const bad: { name: string; payload: Uint8Array; code: string }[] = [
    { name: "not msgpack", payload: Uint8Array.of(0xc1), code: "msgpack" },
    { name: "truncated", payload: pack([0, [["AllBlocksCleared"]]]).subarray(0, 4), code: "msgpack" },
    { name: "batch is a string", payload: pack("x"), code: "batch-shape" },
    { name: "events not a list", payload: pack([0, 5]), code: "batch-shape" },
    { name: "ts missing", payload: pack({ events: [] }), code: "batch-shape" },
    { name: "dp rank a string", payload: pack([0, [], "r"]), code: "batch-shape" },
    { name: "event is a number", payload: pack([0, [7]]), code: "event-shape" },
    { name: "event tag not a string", payload: pack([0, [[1, []]]]), code: "event-shape" },
    { name: "hash is a string", payload: pack([0, [["BlockRemoved", ["h"]]]]), code: "event-shape" },
    { name: "hash is a float", payload: pack([0, [["BlockRemoved", [1.5]]]]), code: "event-shape" },
    { name: "negative token id", payload: pack([0, [["BlockStored", [1], null, [-1], 1, null]]]), code: "event-shape" },
    { name: "block_size missing", payload: pack([0, [["BlockStored", [1], null, [1]]]]), code: "event-shape" },
    { name: "medium not a string", payload: pack([0, [["BlockRemoved", [1], 3]]]), code: "event-shape" },
  ];
  it.each(bad)("$name → $code", ({ payload, code }) => {
    const r = decodeKvEventBatch(payload);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });
});
