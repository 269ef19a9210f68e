/**
 * The contract of a simulated vLLM replica's engine, shared by the discrete-event benchmark
 * (virtual time) and the live HTTP simulator (real time, scaled). The engine is pure and
 * synchronous: time only moves when the caller says so, so both drivers run the very same code.
 *
 * Semantics follow vLLM V1 (DESIGN.md §7): paged KV cache of `totalBlocks` blocks of `blockSize`
 * tokens; prefix caching by chained block keys; blocks of running requests are pinned (refcount);
 * blocks with refcount 0 stay cached in an LRU free list and are evicted oldest-first when new
 * blocks are needed; prompt AND generated tokens are cached (full blocks only); continuous
 * batching with a per-step token budget (chunked prefill) and a max number of sequences.
 * Step time comes from the cost model in DESIGN.md §7.
 */
import type { BlockKey } from "../prefix/block-keys";
import { DEFAULT_COST_MODEL } from "../routing/cost-model";

export interface CostModel {
  /** Fixed prefill overhead per step with prefill work, ms (t0 ≈ 15). */
  readonly prefillBaseMs: number;
  /** ms per uncached prompt token (b ≈ 0.022). */
  readonly prefillPerTokenMs: number;
  /** ms per (new token × context token) (c ≈ 1.31e-6). */
  readonly prefillAttentionMs: number;
  /** Decode step base, ms (≈ 7). */
  readonly decodeBaseMs: number;
  /** Decode ms per KV token in the running batch (≈ 5.2e-5). */
  readonly decodePerKvTokenMs: number;
}

/** DESIGN §7's model: the same numbers the router's default cost model believes (routing/cost-model.ts). */
export const H100_LLAMA_8B: CostModel = {
  prefillBaseMs: DEFAULT_COST_MODEL.prefillBaseMs,
  prefillPerTokenMs: DEFAULT_COST_MODEL.prefillPerTokenMs,
  prefillAttentionMs: DEFAULT_COST_MODEL.prefillAttentionMs,
  decodeBaseMs: DEFAULT_COST_MODEL.decodeBaseMs,
  decodePerKvTokenMs: DEFAULT_COST_MODEL.decodePerKvTokenMs,
};

export interface ReplicaConfig {
  readonly blockSize: number;
  /** KV blocks on the GPU (≈ 27,500 for Llama-3.1-8B bf16 on an H100-80GB). */
  readonly totalBlocks: number;
  /** Token budget per engine step (vLLM default 8,192). */
  readonly maxBatchedTokens: number;
  /** Max running sequences (vLLM default 1,024). */
  readonly maxSeqs: number;
  readonly cost: CostModel;
}

export interface SimRequest {
  readonly id: string;
  /** Prompt token ids. */
  readonly prompt: Uint32Array;
  /** Router keys of the prompt's full blocks (chain order), computed once by the caller. */
  readonly promptKeys: readonly BlockKey[];
  /** Tokens to generate. */
  readonly maxTokens: number;
  /**
   * Parent of block 0 (chainRoot of the request's model and adapter). Needed only to key generated
   * blocks of a prompt shorter than one block; without it those blocks are not cached.
   */
  readonly root?: Buffer;
  /**
   * Token ids the replica "generates", repeated as needed. Default: a per-request pseudo-random
   * sequence, so two requests never share generated blocks (as with sampling at temperature > 0).
   */
  readonly outputTokens?: Uint32Array;
}

/** KV events as the engine emits them, in router keys (a reporter maps them to the wire). */
export type EngineKvEvent =
  | { readonly type: "stored"; readonly keys: readonly BlockKey[]; readonly parent: BlockKey | null; readonly tokens: Uint32Array }
  | { readonly type: "removed"; readonly keys: readonly BlockKey[] }
  | { readonly type: "cleared" };

export interface RequestTiming {
  readonly id: string;
  readonly arrivalMs: number;
  /** When the first output token was produced (TTFT = firstTokenMs − arrivalMs). */
  readonly firstTokenMs: number;
  readonly finishMs: number;
  readonly promptTokens: number;
  /** Prompt tokens served from the prefix cache (vLLM's usage.prompt_tokens_details.cached_tokens). */
  readonly cachedTokens: number;
  readonly outputTokens: number;
}

export interface ReplicaMetrics {
  readonly running: number;
  readonly waiting: number;
  /** Fraction of KV blocks in use by running requests (vllm:kv_cache_usage_perc). */
  readonly kvUsage: number;
  /** Cumulative prompt tokens queried / hit in the prefix cache (vllm:prefix_cache_*_total). */
  readonly prefixQueryTokens: number;
  readonly prefixHitTokens: number;
  /** Total ms spent executing steps (for load-imbalance reports). */
  readonly busyMs: number;
}

export interface ReplicaEngine {
  /** Queues a request that arrived at `nowMs`. */
  submit(request: SimRequest, nowMs: number): void;
  /**
   * Runs engine steps whose start time is ≤ untilMs. Steps are back to back while there is work;
   * a step started before untilMs may end after it.
   */
  advanceTo(untilMs: number): void;
  /** When the next step would start (undefined when idle). */
  nextStepMs(): number | undefined;
  /** Does the cache hold this key right now (for the oracle policy and stale-route checks)? */
  holds(key: BlockKey): boolean;
  /** Leading blocks of `keys` cached right now. */
  cachedPrefix(keys: readonly BlockKey[]): number;
  metrics(): ReplicaMetrics;
  /** Completed requests, drained. */
  takeCompleted(): RequestTiming[];
  /** KV events since the last call, drained (a reporter batches them every ~100 ms). */
  takeKvEvents(): EngineKvEvent[];
  /** First-token notifications since the last call, drained (for streaming responses). */
  takeFirstTokens(): { id: string; atMs: number; cachedTokens: number }[];
}
