/**
 * A prefix that every worker will cache anyway is no reason to prefer the worker that cached it
 * first. A system prompt (or tool schema) that most requests start with is prefilled once per
 * worker and then reused by every later request there: charging its full prefill to each new
 * worker would keep sending every new conversation to the first holders while the rest idle.
 *
 * Amortized charge: a leading block that `count` of the last W routed requests carried will, if
 * requests spread over N workers, come back to a worker about count·r/N more times while it is
 * still cached (r = min(1, L/W), L = how many requests the cluster serves before a cached block
 * is evicted — its cache lifetime — when the capacities are known; r = 1 otherwise: the window is
 * the horizon). Prefilling it on one more worker is paid once for all those reuses, so a worker
 * lacking the block is charged the fraction
 *     a = min(1, N / (count · r))
 * of its prefill. a = 1 (no discount) unless the block recurs more than once per worker: a
 * conversation's own history (a few turns) keeps its full weight; a prompt shared by most
 * requests weighs almost nothing; 16 requests of one group over 8 workers weigh half.
 * Popularity never rises along a chain, so the discounted blocks are a leading run.
 * No parameters of its own: W is the popularity window (key-popularity.ts, 1,000 requests).
 */
import type { BlockKey } from "../prefix/block-keys";
import { prefillComputeMs, type CostModel } from "./cost-model";
import { firstKeyBelow, type PopularityView } from "./policies/routing-policy";

export interface SharedPrefix {
  /** Leading blocks charged less than in full. */
  readonly blocks: number;
  /** Prefill (ms) spared, in the charge, to a worker that already holds `cachedBlocks` leading blocks. */
  discountMs(cachedBlocks: number): number;
}

export const NO_SHARED_PREFIX: SharedPrefix = Object.freeze({ blocks: 0, discountMs: () => 0 });

export interface SharedPrefixInput {
  readonly keys: readonly BlockKey[];
  readonly popularity: PopularityView;
  /** Workers the requests spread over (the eligible ones). */
  readonly workers: number;
  /** r above: min(1, cache lifetime in requests / popularity window); 1 when unknown. */
  readonly reuseScale: number;
  readonly blockSize: number;
  readonly cost: CostModel;
}

/**
 * The charge a (a < 1) of each block of the shared head, in chain order; empty when there is none.
 * Counts never rise along a chain, so blocks carried by equally many requests form runs, and each
 * run's end is found by binary search: O(runs · log blocks) popularity reads, not one per block
 * (a 2,048-block prompt every request shares is one run).
 */
export function sharedHeadCharges(keys: readonly BlockKey[], popularity: PopularityView, workers: number, reuseScale: number): number[] {
  const r = Math.min(1, Math.max(0, reuseScale));
  const charges: number[] = [];
  let i = 0;
  while (i < keys.length) {
    const count = popularity.requestsWith(keys, i);
    const reuses = count * r;
    if (reuses <= workers) break;
    // The run ends where fewer requests carried a block.
    const end = firstKeyBelow(keys, popularity, count, i + 1);
    for (const charge = workers / reuses; i < end; i++) charges.push(charge);
  }
  return charges;
}

export function sharedPrefix(input: SharedPrefixInput): SharedPrefix {
  const { blockSize, cost } = input;
  const charges = sharedHeadCharges(input.keys, input.popularity, input.workers, input.reuseScale);
  // spared[i] = Σ over blocks j < i of (1 − a_j) · prefill(block j)
  const spared: number[] = [0];
  charges.forEach((charge, j) => spared.push(spared[j] + (1 - charge) * prefillComputeMs(cost, blockSize, j * blockSize)));
  const blocks = charges.length;
  if (blocks === 0) return NO_SHARED_PREFIX;
  return {
    blocks,
    discountMs: (cachedBlocks) => spared[blocks] - spared[Math.min(blocks, Math.max(0, cachedBlocks))],
  };
}
