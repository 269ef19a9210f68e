/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, SODA 2018).
 *
 * Hashed key: the request's first NON-SHARED block. A block is shared when at least `minShared`
 * requests AND at least `sharedFraction` of the requests in the popularity window carried it
 * (KeyPopularity, fed with the keys of routed requests — what any router can observe). A system prompt every request starts with is skipped (hashing it would send all
 * traffic to one worker); a conversation's first own block is the same on every turn, so turns
 * stick. When every block is shared the last block is hashed; an empty chain hashes the ordinal.
 *
 * Bounded load: with m in-flight requests in all (this one included) and N workers, a worker may
 * hold at most ceil(c · m / N); the request goes to the first worker clockwise from the key's point
 * whose in-flight count is below that cap (`guardTripped` when that is not the key's home worker).
 *
 * Parameters: capacityFactor c = 1.25, virtualNodes 160 per worker, sharedFraction 0.1, minShared 8.
 */
import type { PolicyDecision } from "../policy";
import { HashRing } from "./hash-ring";
import { blindRoute, firstKeyBelow, keyHash32, mix32, type PopularityView, type RoutingInput, type RoutingPolicy } from "./routing-policy";

export interface ConsistentHashOptions {
  readonly popularity: PopularityView;
  readonly capacityFactor?: number;
  readonly virtualNodes?: number;
  readonly sharedFraction?: number;
  readonly minShared?: number;
}

export const CONSISTENT_HASH_DEFAULTS = Object.freeze({ capacityFactor: 1.25, virtualNodes: 160, sharedFraction: 0.1, minShared: 8 });

/** Index of the first non-shared key (see above); the last key when all are shared; -1 for none. */
export function firstNonSharedBlock(keys: readonly string[], popularity: PopularityView, fraction: number, minShared: number): number {
  const lo = firstKeyBelow(keys, popularity, Math.max(minShared, fraction * popularity.requests));
  return lo < keys.length ? lo : keys.length > 0 ? keys.length - 1 : -1;
}

export function boundedLoadCap(totalInFlight: number, workers: number, capacityFactor: number): number {
  return Math.ceil((capacityFactor * (totalInFlight + 1)) / workers);
}

export function consistentHash(options: ConsistentHashOptions): RoutingPolicy {
  const c = options.capacityFactor ?? CONSISTENT_HASH_DEFAULTS.capacityFactor;
  const vnodes = options.virtualNodes ?? CONSISTENT_HASH_DEFAULTS.virtualNodes;
  const fraction = options.sharedFraction ?? CONSISTENT_HASH_DEFAULTS.sharedFraction;
  const minShared = options.minShared ?? CONSISTENT_HASH_DEFAULTS.minShared;
  if (!(c >= 1)) throw new RangeError(`capacityFactor must be ≥ 1, got ${c}`);
  let ring: HashRing | undefined;
  let ringFor = "";

  return {
    kind: "consistent-hash",
    usesMatch: false,
    decide(input: RoutingInput): PolicyDecision {
      const { workers, keys } = input;
      if (workers.length === 0) return { kind: "reject", reason: "no-candidates" };
      const ids = workers.map((w) => w.id).join("\u0000");
      if (ring === undefined || ids !== ringFor) {
        ring = new HashRing(workers.map((w) => w.id), vnodes);
        ringFor = ids;
      }
      const at = firstNonSharedBlock(keys, options.popularity, fraction, minShared);
      const point = at >= 0 ? keyHash32(keys[at]) : mix32(input.sequence + 1);
      const total = workers.reduce((sum, w) => sum + w.inFlight, 0);
      const cap = boundedLoadCap(total, workers.length, c);
      let pick = -1;
      let tried = 0;
      ring.walk(point, (w) => {
        tried++;
        if (workers[w].inFlight < cap) pick = w;
        return pick >= 0;
      });
      // Unreachable: the cap is above the mean, so some worker is below it.
      if (pick < 0) return { kind: "reject", reason: "no-candidates" };
      return blindRoute(workers[pick], input, tried > 1);
    },
  };
}
