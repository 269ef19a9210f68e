/**
 * One contract for every routing policy the benchmark compares (and the server could run): a
 * synchronous decide() over frozen inputs that returns the production PolicyDecision. Expensive
 * per-request data (block keys, the index's PrefixMatch, key popularity) is produced once by the
 * caller; policies only read it (house style 9, 10).
 *
 * Outcome semantics for cache-blind policies: "miss" means "routed without a prefix claim"
 * (matchedBlocks 0); only policies that read a PrefixMatch ever claim a hit.
 */
import type { BlockKey } from "../../prefix/block-keys";
import type { PolicyDecision, PrefixMatch } from "../policy";
import type { WorkerView } from "../worker-view";
import { mix32 } from "../../common/mix32";
export { mix32 };

export const POLICY_KINDS = ["round-robin", "random", "least-loaded", "consistent-hash", "sticky-least-loaded", "min-ttft"] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

/** Read-only view of how many recent requests carried a block key (see key-popularity.ts). */
export interface PopularityView {
  /** Recent requests (in the window) whose prompt holds `keys[at]` (by position: a KeyChain is read by its 64-bit values). */
  requestsWith(keys: readonly BlockKey[], at: number): number;
  /** Requests currently in the window. */
  readonly requests: number;
}

/**
 * The first position at or after `from` whose key fewer than `limit` recent requests carried
 * (keys.length if none): popularity never rises along a chain, so a binary search finds it.
 */
export function firstKeyBelow(keys: readonly BlockKey[], popularity: PopularityView, limit: number, from = 0): number {
  let lo = from;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (popularity.requestsWith(keys, mid) < limit) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export interface RoutingInput {
  /** Frozen snapshot of the eligible workers, in a stable order (round-robin cycles over it). */
  readonly workers: readonly WorkerView[];
  /** The request's block keys, chain order. */
  readonly keys: readonly BlockKey[];
  /** Leading cached runs per worker from an index, for policies with usesMatch; null otherwise. */
  readonly match: PrefixMatch | null;
  /** The request's ordinal at this router (0, 1, 2, …): round-robin's cursor, tie-breaks. */
  readonly sequence: number;
  /** Prompt tokens, partial last block included (default: keys × block size). */
  readonly promptTokens?: number;
  /**
   * min(1, cache lifetime in requests / popularity window), for the shared-prefix charge
   * (shared-prefix.ts); 1 when the workers' cache capacities are unknown.
   */
  readonly reuseScale?: number;
  /** Requests arriving per ms at each worker (this router's recent rate over its candidates), for min-ttft; 0 when unknown. */
  readonly arrivalsPerMs?: number;
}

export interface RoutingPolicy {
  readonly kind: PolicyKind;
  /** decide() reads input.match: the caller must look the keys up in an index first. */
  readonly usesMatch: boolean;
  decide(input: RoutingInput): PolicyDecision;
}

/** A route decision without a prefix claim: what every cache-blind policy answers. */
export function blindRoute(worker: WorkerView, input: RoutingInput, guardTripped = false): PolicyDecision {
  return {
    kind: "route",
    worker,
    outcome: "miss",
    matchedBlocks: 0,
    totalBlocks: input.keys.length,
    candidates: input.workers.length,
    guardTripped,
  };
}

/** The first 32 bits of a block key (keys are SHA-256 prefixes: already uniform). */
export function keyHash32(key: BlockKey): number {
  return parseInt(key.slice(0, 8), 16) >>> 0;
}

/**
 * Which block seeds tie-breaks: "last" is RequestRouter's rule (requests that share a system prompt
 * but differ after it spread; one request always breaks ties the same way); "first" (an
 * experiment) makes every request with one first block break ties the same way.
 */
export type TieSeed = "first" | "last";

/** A PrefixMatch with RequestRouter's seed rule by default (the last full block's key; 0 for an empty chain). */
export function prefixMatch(keys: readonly BlockKey[], runs: ReadonlyMap<string, number>, tieSeed: TieSeed = "last"): PrefixMatch {
  const at = tieSeed === "first" ? 0 : keys.length - 1;
  return { totalBlocks: keys.length, runs, seed: keys.length ? keyHash32(keys[at]) : 0 };
}
