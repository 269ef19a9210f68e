/**
 * Decoder for vLLM's native KV cache event payloads (the third frame of each ZMQ message).
 *
 * Wire format, checked in vllm-project/vllm `vllm/distributed/kv_events.py`:
 *   KVEventBatch = msgspec.Struct(ts: float, events: list, data_parallel_rank: int | None = None)
 *   events are tagged structs (`tag=True`: tag field "type", tag value = class name):
 *     BlockStored(block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium,
 *                 lora_name, extra_keys=None, group_idx=None, kv_cache_spec_kind=None,
 *                 kv_cache_spec_sliding_window=None)
 *     BlockRemoved(block_hashes, medium, group_idx=None)
 *     AllBlocksCleared()
 * Older vLLM declares the structs `array_like=True`, so the batch is `[ts, events, dp_rank?]` and an
 * event is `[tag, field…]` in declaration order (the oldest has neither medium, lora_name nor
 * dp_rank); newer vLLM drops array_like, so both become maps. `omit_defaults=True` means trailing
 * defaulted fields (and a None dp_rank) may be absent in either form. We accept all of these.
 *
 * Hashes (`ExternalBlockHash = bytes | int`, `maybe_convert_block_hash` in
 * vllm/v1/core/kv_cache_utils.py): by default the low 64 bits of the digest as an unsigned int
 * (msgpack uint64, so above 2^53 — decoded as BigInt to stay exact); with
 * VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=0 the raw digest bytes. The oldest vLLM sent Python's signed
 * hash(). Each is normalized to a string map key: "i:<decimal>" or "b:<hex>".
 *
 * Malformed input is a value (`{ok:false}`), never an exception: this runs inside the socket loop.
 */
import { Decoder } from "@msgpack/msgpack";

/** A vLLM block hash as a map key: "i:<decimal>" (integer form) or "b:<lowercase hex>" (bytes form). */
export type VllmHash = string;

export interface BlockStoredEvent {
  readonly type: "BlockStored";
  readonly blockHashes: readonly VllmHash[];
  /** null when the stored run starts at block 0 of the request. */
  readonly parentBlockHash: VllmHash | null;
  /** The tokens of exactly the new blocks (blockHashes.length × blockSize in current vLLM). */
  readonly tokenIds: readonly number[];
  readonly blockSize: number;
  readonly loraId: number | null;
  readonly loraName: string | null;
  /** "GPU", a CPU-offload medium, or null (older vLLM: GPU implied). */
  readonly medium: string | null;
  readonly groupIdx: number | null;
  readonly kvCacheSpecKind: string | null;
}

export interface BlockRemovedEvent {
  readonly type: "BlockRemoved";
  readonly blockHashes: readonly VllmHash[];
  readonly medium: string | null;
  readonly groupIdx: number | null;
}

export interface AllBlocksClearedEvent {
  readonly type: "AllBlocksCleared";
}

export type VllmKvEvent = BlockStoredEvent | BlockRemovedEvent | AllBlocksClearedEvent;

export interface VllmKvEventBatch {
  readonly ts: number;
  readonly events: readonly VllmKvEvent[];
  /** null when the publisher did not say (older vLLM, or omitted as a default). */
  readonly dpRank: number | null;
  /** Events with a type we do not know (a newer vLLM); skipped, not an error. */
  readonly unknownEvents: number;
}

export type KvDecodeErrorCode = "msgpack" | "batch-shape" | "event-shape";

export interface KvDecodeError {
  readonly code: KvDecodeErrorCode;
  readonly detail: string;
}

export type KvDecodeResult = { readonly ok: true; readonly batch: VllmKvEventBatch } | { readonly ok: false; readonly error: KvDecodeError };

// useBigInt64: msgpack (u)int64 values decode as bigint, so hashes above 2^53 stay exact.
const msgpack = new Decoder({ useBigInt64: true });

class ShapeError extends Error {}

/** Decodes one payload frame. Never throws. */
export function decodeKvEventBatch(payload: Uint8Array): KvDecodeResult {
  let raw: unknown;
  try {
    raw = msgpack.decode(payload);
  } catch (err) {
    return { ok: false, error: { code: "msgpack", detail: (err as Error).message } };
  }
  let ts: unknown;
  let events: unknown;
  let dpRank: unknown;
  if (Array.isArray(raw)) {
    [ts, events, dpRank] = raw;
  } else if (isMap(raw)) {
    ({ ts, events, data_parallel_rank: dpRank } = raw);
  } else {
    return { ok: false, error: { code: "batch-shape", detail: `batch is ${describe(raw)}, not an array or map` } };
  }
  if (typeof ts !== "number" && typeof ts !== "bigint") return batchError(`ts is ${describe(ts)}`);
  if (!Array.isArray(events)) return batchError(`events is ${describe(events)}`);
  const rank = optInt(dpRank);
  if (rank === undefined) return batchError(`data_parallel_rank is ${describe(dpRank)}`);

  const decoded: VllmKvEvent[] = [];
  let unknownEvents = 0;
  for (let i = 0; i < events.length; i++) {
    try {
      const event = decodeEvent(events[i]);
      if (event) decoded.push(event);
      else unknownEvents++;
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err; // a bug, not bad input
      return { ok: false, error: { code: "event-shape", detail: `event ${i}: ${err.message}` } };
    }
  }
  return { ok: true, batch: { ts: Number(ts), events: decoded, dpRank: rank, unknownEvents } };
}

function batchError(detail: string): KvDecodeResult {
  return { ok: false, error: { code: "batch-shape", detail } };
}

/** Field names in declaration order = positions 1… of the array_like form (0 is the tag). */
const STORED_FIELDS = ["block_hashes", "parent_block_hash", "token_ids", "block_size", "lora_id", "medium", "lora_name", "extra_keys", "group_idx", "kv_cache_spec_kind"];
const REMOVED_FIELDS = ["block_hashes", "medium", "group_idx"];

/** The event, or null for an event type we do not know. Throws ShapeError on a malformed event. */
function decodeEvent(raw: unknown): VllmKvEvent | null {
  let tag: unknown;
  let field: (name: string) => unknown;
  if (Array.isArray(raw)) {
    tag = raw[0];
    field = (name) => {
      const at = tag === "BlockStored" ? STORED_FIELDS.indexOf(name) : REMOVED_FIELDS.indexOf(name);
      return at < 0 ? undefined : raw[at + 1];
    };
  } else if (isMap(raw)) {
    tag = raw.type;
    field = (name) => raw[name];
  } else {
    throw new ShapeError(`event is ${describe(raw)}`);
  }
  switch (tag) {
    case "BlockStored":
      return {
        type: "BlockStored",
        blockHashes: hashList(field("block_hashes"), "block_hashes"),
        parentBlockHash: field("parent_block_hash") == null ? null : hashOf(field("parent_block_hash"), "parent_block_hash"),
        tokenIds: tokenList(field("token_ids")),
        blockSize: required(checked(optInt(field("block_size")), "block_size"), "block_size"),
        loraId: checked(optInt(field("lora_id")), "lora_id"),
        loraName: checked(optString(field("lora_name")), "lora_name"),
        medium: checked(optString(field("medium")), "medium"),
        groupIdx: checked(optInt(field("group_idx")), "group_idx"),
        kvCacheSpecKind: checked(optString(field("kv_cache_spec_kind")), "kv_cache_spec_kind"),
      };
    case "BlockRemoved":
      return {
        type: "BlockRemoved",
        blockHashes: hashList(field("block_hashes"), "block_hashes"),
        medium: checked(optString(field("medium")), "medium"),
        groupIdx: checked(optInt(field("group_idx")), "group_idx"),
      };
    case "AllBlocksCleared":
      return { type: "AllBlocksCleared" };
    default:
      if (typeof tag !== "string") throw new ShapeError(`event tag is ${describe(tag)}`);
      return null;
  }
}

/** Normalizes one hash (int, bigint or bytes) to its map key. Throws ShapeError otherwise. */
function hashOf(raw: unknown, what: string): VllmHash {
  if (typeof raw === "bigint") return `i:${raw}`;
  if (typeof raw === "number" && Number.isInteger(raw)) return `i:${raw}`;
  if (raw instanceof Uint8Array) return `b:${Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("hex")}`;
  throw new ShapeError(`${what} is ${describe(raw)}, not an integer or bytes`);
}

function hashList(raw: unknown, what: string): VllmHash[] {
  if (!Array.isArray(raw)) throw new ShapeError(`${what} is ${describe(raw)}, not a list`);
  return raw.map((h) => hashOf(h, what));
}

function tokenList(raw: unknown): number[] {
  if (!Array.isArray(raw)) throw new ShapeError(`token_ids is ${describe(raw)}, not a list`);
  const out = new Array<number>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const t = typeof raw[i] === "bigint" ? Number(raw[i]) : raw[i];
    if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new ShapeError(`token_ids[${i}] is ${describe(raw[i])}`);
    out[i] = t;
  }
  return out;
}

/** A safe integer or null (absent); undefined when the value is present but not an integer. */
function optInt(raw: unknown): number | null | undefined {
  if (raw == null) return null;
  if (typeof raw === "bigint") return raw >= BigInt(Number.MIN_SAFE_INTEGER) && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : undefined;
  return typeof raw === "number" && Number.isInteger(raw) ? raw : undefined;
}

function optString(raw: unknown): string | null | undefined {
  if (raw == null) return null;
  return typeof raw === "string" ? raw : undefined;
}

function checked<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new ShapeError(`${what} has the wrong type`);
  return value;
}

function required<T>(value: T | null, what: string): T {
  if (value === null) throw new ShapeError(`${what} is missing`);
  return value;
}

function isMap(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === "object" && raw !== null && !Array.isArray(raw) && !(raw instanceof Uint8Array);
}

function describe(raw: unknown): string {
  if (raw === null) return "null";
  if (Array.isArray(raw)) return "an array";
  if (raw instanceof Uint8Array) return "bytes";
  return typeof raw === "object" ? "a map" : `${typeof raw} ${String(raw).slice(0, 40)}`;
}
