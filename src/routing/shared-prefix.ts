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
import type { CostModel } from "./cost-model";
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

/** Blocks [previous run's end, `end`) of a shared head, each charged `charge` (< 1). */
export interface ChargeRun {
  readonly end: number;
  readonly charge: number;
}

/**
 * The shared head as runs of equally charged blocks, in chain order; empty when there is none.
 * Counts never rise along a chain, so blocks carried by equally many requests form runs, and each
 * run's end is found by binary search: O(runs · log blocks) popularity reads, not one per block
 * (a 2,048-block prompt every request shares is one run).
 */
export function sharedHeadRuns(keys: readonly BlockKey[], popularity: PopularityView, workers: number, reuseScale: number): ChargeRun[] {
  const r = Math.min(1, Math.max(0, reuseScale));
  const runs: ChargeRun[] = [];
  let i = 0;
  while (i < keys.length) {
    const count = popularity.requestsWith(keys, i);
    const reuses = count * r;
    if (reuses <= workers) break;
    // The run ends where fewer requests carried a block.
    i = firstKeyBelow(keys, popularity, count, i + 1);
    runs.push({ end: i, charge: workers / reuses });
  }
  return runs;
}

/** The charge a (a < 1) of each block of the shared head, in chain order; empty when there is none. */
export function sharedHeadCharges(keys: readonly BlockKey[], popularity: PopularityView, workers: number, reuseScale: number): number[] {
  const charges: number[] = [];
  for (const run of sharedHeadRuns(keys, popularity, workers, reuseScale)) while (charges.length < run.end) charges.push(run.charge);
  return charges;
}

export function sharedPrefix(input: SharedPrefixInput): SharedPrefix {
  const { blockSize, cost } = input;
  const runs = sharedHeadRuns(input.keys, input.popularity, input.workers, input.reuseScale);
  if (runs.length === 0) return NO_SHARED_PREFIX;
  const blocks = runs[runs.length - 1].end;
  // Prefill of blocks [u, v) after u cached blocks: prefillComputeMs summed block by block, whose
  // attention term grows linearly with a block's position — an arithmetic series, so no walk
  // (shared-prefix.test.ts checks it against the block-by-block sum).
  const B = blockSize;
  const prefillOf = (u: number, v: number) => (v - u) * B * (cost.prefillPerTokenMs + (cost.prefillAttentionMs * B * (u + v)) / 2);
  return {
    blocks,
    // Σ over shared blocks j ≥ cachedBlocks of (1 − a_j) · prefill(block j)
    discountMs: (cachedBlocks) => {
      let spared = 0;
      let start = 0;
      for (const { end, charge } of runs) {
        const from = Math.max(start, cachedBlocks);
        if (from < end) spared += (1 - charge) * prefillOf(from, end);
        start = end;
      }
      return spared;
    },
  };
}
