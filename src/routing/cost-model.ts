/**
 * What the router believes a replica's engine costs, in milliseconds: the cost model of
 * DESIGN.md §7 (Llama-3.1-8B bf16 on one H100, derived from Vidur's profiles), used to turn a
 * worker's outstanding work and a request's uncached prefix into an estimated time to first token.
 *
 *   prefill of U new tokens after C cached ones:   b·U + c·U·(C + U/2)
 *   one engine step:                               max(t0 if it prefills, d0 if it decodes)
 *                                                  + k · (KV tokens of the running decodes)
 *   a step carries at most maxBatchedTokens tokens (vLLM's chunked prefill), FCFS.
 *
 * What decides routing is the ratio of these terms (a cached block saved vs. a queue waited), and
 * both scale together with the GPU's speed, so a model off by a constant factor still ranks workers
 * the same way; set the values for your hardware and model (routing.costModel) when they differ a lot.
 * Defaults: t0 15 ms, b 0.022 ms/token, c 1.31e-6 ms per (new × context) token, d0 7 ms,
 * k 5.2e-5 ms per KV token, maxBatchedTokens 8,192 (vLLM's default).
 */
export interface CostModel {
  /** t0: fixed cost of a step that prefills, ms. */
  readonly prefillBaseMs: number;
  /** b: ms per uncached prompt token. */
  readonly prefillPerTokenMs: number;
  /** c: ms per (new token × context token), the attention term. */
  readonly prefillAttentionMs: number;
  /** d0: fixed cost of a decode-only step, ms. */
  readonly decodeBaseMs: number;
  /** k: ms per KV token read by the running decodes in a step. */
  readonly decodePerKvTokenMs: number;
  /** Tokens one step carries (vLLM --max-num-batched-tokens). */
  readonly maxBatchedTokens: number;
}

export const DEFAULT_COST_MODEL: CostModel = Object.freeze({
  prefillBaseMs: 15,
  prefillPerTokenMs: 0.022,
  prefillAttentionMs: 1.31e-6,
  decodeBaseMs: 7,
  decodePerKvTokenMs: 5.2e-5,
  maxBatchedTokens: 8192,
});

/** Compute of prefilling `uncached` tokens that follow `cached` ones (no step overhead), ms. */
export function prefillComputeMs(cost: CostModel, uncached: number, cached: number): number {
  if (uncached <= 0) return 0;
  return cost.prefillPerTokenMs * uncached + cost.prefillAttentionMs * uncached * (cached + uncached / 2);
}

/** Fixed cost of one step that prefills while `kvTokens` of running decodes ride along, ms. */
export function prefillStepOverheadMs(cost: CostModel, running: number, kvTokens: number): number {
  return Math.max(cost.prefillBaseMs, running > 0 ? cost.decodeBaseMs : 0) + cost.decodePerKvTokenMs * kvTokens;
}

/** Steps needed before `ownTokens` are prefilled behind `queuedTokens` (FCFS, chunked), at least 1. */
export function prefillSteps(cost: CostModel, queuedTokens: number, ownTokens: number): number {
  return Math.max(1, Math.ceil((queuedTokens + Math.max(1, ownTokens)) / cost.maxBatchedTokens));
}
