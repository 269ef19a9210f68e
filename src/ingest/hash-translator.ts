/**
 * HashTranslator: turns one worker's decoded vLLM KV events into CacheIndex ops on our own keys.
 * Pure (no I/O, no clock), so the ZMQ subscriber, the simulator and the benchmarks share it.
 *
 * vLLM's block hashes depend on PYTHONHASHSEED and the hash algorithm (docs/prefix-keys.md), so we
 * re-key: per dp_rank, a table vLLM hash → router key. BlockStored carries the tokens of exactly its
 * new blocks (vllm/v1/core/block_pool.py `cache_full_blocks`: token_ids =
 * all_token_ids[num_cached_blocks·block_size : num_full_blocks·block_size]) and the vLLM hash of the
 * block before them, so:
 *   parent key = chainRoot(hashSeed, model, lora_name ?? "")  when parent_block_hash is null
 *              = table[parent_block_hash]                       otherwise (unknown → untranslatable)
 *   keys       = blockKeys(token_ids, blockSize, parent key); table[block_hashes[i]] = keys[i]
 * BlockRemoved removes known hashes (unknown ones were never added); AllBlocksCleared clears.
 *
 * Filters, and why:
 * - medium: only null (older vLLM, GPU implied) and "GPU". CPU/disk offload media report blocks
 *   that a request can only use after a load back to the GPU; counting them as hits would steer
 *   traffic by a cache tier the routing cost model does not price. Ignored, counted.
 * - kv_cache_spec_kind: only absent or full-attention kinds. Sliding-window/mamba groups keep a
 *   tail of the same hashes; their removals would wrongly drop prefix blocks. Such a group is
 *   remembered from its store events so that its remove events (which carry only group_idx) are
 *   ignored too.
 * - block_size ≠ configured blockSize: rejected — keys would be cut at other boundaries.
 *
 * A hash is held once per table (set semantics): vLLM may cache two copies of one hash and evict
 * one, so we may drop a key a little early — an under-claim costs a hit, an over-claim misroutes.
 * Memory: the table holds what the worker holds (removals delete) plus a hard cap `maxEntries`
 * (default 2,000,000 over all ranks); past the cap the oldest mapping goes and its key is removed
 * from the index too, so the index never keeps a key we could no longer remove.
 */
import type { IndexOp } from "../state/cache-index";
import { blockKeys, chainRoot, keyBytes, type BlockKey } from "../prefix/block-keys";
import type { BlockRemovedEvent, BlockStoredEvent, VllmHash, VllmKvEventBatch } from "./vllm-kv-events";

export const DEFAULT_MAX_TABLE_ENTRIES = 2_000_000;

/** Cache spec kinds whose blocks make a prefix hit (vllm/v1/kv_cache_interface.py KVCacheSpecKind). */
const PREFIX_KINDS = new Set(["full_attention", "mla_attention", "sink_full_attention"]);

export interface HashTranslatorOptions {
  readonly hashSeed: string;
  /** Canonical model name (the router config's), part of the chain root. */
  readonly model: string;
  readonly blockSize: number;
  readonly maxEntries?: number;
}

export type TranslateIssueKind = "untranslatable" | "rejected" | "ignored";

export interface TranslateIssue {
  readonly kind: TranslateIssueKind;
  /** Index of the event in the batch. */
  readonly event: number;
  readonly reason: string;
}

export interface TranslateResult {
  /** In event order; adjacent ops of one kind are merged. */
  readonly ops: IndexOp[];
  readonly issues: TranslateIssue[];
  /** Removals of hashes we never mapped (joined mid-stream, or evicted by the cap). */
  readonly unknownRemovals: number;
}

type MutableResult = { -readonly [K in keyof TranslateResult]: TranslateResult[K] };

interface Table {
  readonly keys: Map<VllmHash, BlockKey>;
}

const NO_RANK = -1;

export class HashTranslator {
  private readonly tables = new Map<number, Table>();
  private readonly ignoredGroups = new Map<number, Set<number>>();
  private readonly roots = new Map<string, Buffer>();
  private readonly opts: Required<HashTranslatorOptions>;
  private entries = 0;

  constructor(options: HashTranslatorOptions) {
    if (!Number.isInteger(options.blockSize) || options.blockSize <= 0) throw new RangeError(`blockSize must be a positive integer, got ${options.blockSize}`);
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_TABLE_ENTRIES;
    if (!(maxEntries > 0)) throw new RangeError(`maxEntries must be positive, got ${maxEntries}`);
    this.opts = { ...options, maxEntries };
  }

  /** Mappings held over all ranks. */
  size(): number {
    return this.entries;
  }

  /** Forgets every rank's table (engine restart: the new engine's hashes mean nothing to us). */
  reset(): void {
    this.tables.clear();
    this.ignoredGroups.clear();
    this.entries = 0;
  }

  translate(batch: VllmKvEventBatch): TranslateResult {
    const rank = batch.dpRank ?? NO_RANK;
    const result: MutableResult = { ops: [], issues: [], unknownRemovals: 0 };
    batch.events.forEach((event, i) => {
      if (event.type === "AllBlocksCleared") {
        this.dropTable(rank);
        push(result.ops, { op: "clear" });
      } else if (event.type === "BlockStored") {
        this.stored(rank, event, i, result);
      } else {
        this.removed(rank, event, i, result);
      }
    });
    return result;
  }

  private stored(rank: number, event: BlockStoredEvent, i: number, result: MutableResult): void {
    const skip = this.filter(rank, event, i);
    if (skip) return void result.issues.push(skip);
    const { blockSize } = this.opts;
    if (event.blockSize !== blockSize) {
      return void result.issues.push({ kind: "rejected", event: i, reason: `block_size ${event.blockSize} ≠ configured ${blockSize}` });
    }
    if (event.tokenIds.length !== event.blockHashes.length * blockSize) {
      const reason = `${event.tokenIds.length} token ids for ${event.blockHashes.length} blocks of ${blockSize}`;
      return void result.issues.push({ kind: "untranslatable", event: i, reason });
    }
    let parent: Buffer;
    let parentKey: BlockKey | undefined;
    if (event.parentBlockHash === null) {
      if (event.loraId !== null && event.loraName === null) {
        return void result.issues.push({ kind: "untranslatable", event: i, reason: `lora_id ${event.loraId} without lora_name` });
      }
      parent = this.root(event.loraName ?? "");
    } else {
      parentKey = this.tables.get(rank)?.keys.get(event.parentBlockHash);
      if (parentKey === undefined) {
        return void result.issues.push({ kind: "untranslatable", event: i, reason: `unknown parent ${event.parentBlockHash}` });
      }
      parent = keyBytes(parentKey);
    }
    const keys = blockKeys(event.tokenIds, blockSize, parent);
    const table = this.table(rank);
    for (let b = 0; b < keys.length; b++) {
      const hash = event.blockHashes[b];
      if (table.keys.has(hash)) table.keys.delete(hash); // re-insert: newest goes last for the cap
      else this.entries++;
      table.keys.set(hash, keys[b]);
    }
    if (keys.length > 0) push(result.ops, parentKey === undefined ? { op: "add", keys } : { op: "add", keys, parent: parentKey });
    this.enforceCap(result);
  }

  private removed(rank: number, event: BlockRemovedEvent, i: number, result: MutableResult): void {
    const skip = this.filter(rank, event, i);
    if (skip) return void result.issues.push(skip);
    const table = this.tables.get(rank);
    const keys: BlockKey[] = [];
    for (const hash of event.blockHashes) {
      const key = table?.keys.get(hash);
      if (key === undefined) {
        result.unknownRemovals++;
        continue;
      }
      table!.keys.delete(hash);
      this.entries--;
      keys.push(key);
    }
    if (keys.length > 0) push(result.ops, { op: "remove", keys });
  }

  /** An "ignored" issue when the event is about a medium or cache group we do not track. */
  private filter(rank: number, event: BlockStoredEvent | BlockRemovedEvent, i: number): TranslateIssue | undefined {
    if (event.medium !== null && event.medium !== "GPU") return { kind: "ignored", event: i, reason: `medium ${event.medium}` };
    if (event.groupIdx === null) return undefined;
    let ignored = this.ignoredGroups.get(rank);
    if (event.type === "BlockStored" && event.kvCacheSpecKind !== null && !PREFIX_KINDS.has(event.kvCacheSpecKind)) {
      if (!ignored) this.ignoredGroups.set(rank, (ignored = new Set()));
      ignored.add(event.groupIdx);
    }
    if (ignored?.has(event.groupIdx)) return { kind: "ignored", event: i, reason: `cache group ${event.groupIdx} is not full attention` };
    return undefined;
  }

  private root(lora: string): Buffer {
    let root = this.roots.get(lora);
    if (!root) {
      root = chainRoot({ hashSeed: this.opts.hashSeed, model: this.opts.model, lora });
      this.roots.set(lora, root);
    }
    return root;
  }

  private table(rank: number): Table {
    let table = this.tables.get(rank);
    if (!table) this.tables.set(rank, (table = { keys: new Map() }));
    return table;
  }

  private dropTable(rank: number): void {
    const table = this.tables.get(rank);
    if (!table) return;
    this.entries -= table.keys.size;
    this.tables.delete(rank); // group kinds are a property of the engine: keep ignoredGroups
  }

  /** Past the cap, drops the oldest mappings (largest table first) and removes their keys. */
  private enforceCap(result: MutableResult): void {
    if (this.entries <= this.opts.maxEntries) return;
    const evicted: BlockKey[] = [];
    while (this.entries > this.opts.maxEntries) {
      let largest: Table | undefined;
      for (const t of this.tables.values()) if (!largest || t.keys.size > largest.keys.size) largest = t;
      const oldest = largest!.keys.entries().next().value as [VllmHash, BlockKey];
      largest!.keys.delete(oldest[0]);
      this.entries--;
      evicted.push(oldest[1]);
    }
    push(result.ops, { op: "remove", keys: evicted });
  }
}

/**
 * Appends an op, merged into the last one of its kind when that keeps its meaning: removals always;
 * adds when neither continues a chain, or when this one continues the last one's chain. Every keys
 * array in `ops` was created by this translator for this result, so growing it in place is safe.
 */
function push(ops: IndexOp[], op: IndexOp): void {
  const last = ops[ops.length - 1];
  const merges =
    last !== undefined && op.op !== "clear" && last.op === op.op &&
    (op.op === "remove" || (op.parent === undefined ? (last as typeof op).parent === undefined : last.keys[last.keys.length - 1] === op.parent));
  if (merges) {
    const keys = last.keys as BlockKey[];
    for (const key of (op as { keys: readonly BlockKey[] }).keys) keys.push(key);
  } else {
    ops.push(op);
  }
}
