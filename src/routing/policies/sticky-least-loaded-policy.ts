/**
 * The production Sticky-Least-Loaded (../sticky-least-loaded.ts), unchanged, behind the policy
 * contract. What it is fed decides what it is: events + speculative records (prefix-router), its
 * own past decisions (approximate), or the replicas' exact caches (oracle).
 *
 * Parameters: the production defaults — loadGuard { absolute: 8, relative: 1.5 } and
 * minGainBlocks 16 (src/config/schema.ts routing.*). With a popularity view, the minimum-gain rule
 * weighs each block of the request's shared head by its shared-prefix charge (shared-prefix.ts).
 */
import type { LoadGuard, PolicyDecision, StickyParams } from "../policy";
import { sharedHeadCharges } from "../shared-prefix";
import { stickyLeastLoaded as decideSticky } from "../sticky-least-loaded";
import { prefixMatch, type PopularityView, type RoutingInput, type RoutingPolicy } from "./routing-policy";

export const DEFAULT_LOAD_GUARD: LoadGuard = Object.freeze({ absolute: 8, relative: 1.5 });
export const DEFAULT_MIN_GAIN_BLOCKS = 16;

const NO_RUNS: ReadonlyMap<string, number> = new Map();

export function stickyLeastLoadedPolicy(loadGuard: LoadGuard = DEFAULT_LOAD_GUARD, minGainBlocks = DEFAULT_MIN_GAIN_BLOCKS, popularity?: PopularityView): RoutingPolicy {
  const params: StickyParams = { absolute: loadGuard.absolute, relative: loadGuard.relative, minGainBlocks };
  return {
    kind: "sticky-least-loaded",
    usesMatch: true,
    decide(input: RoutingInput): PolicyDecision {
      const shared = popularity ? sharedHeadCharges(input.keys, popularity, input.workers.length, input.reuseScale ?? 1) : [];
      return decideSticky(input.workers, input.match ?? prefixMatch(input.keys, NO_RUNS), params, shared);
    },
  };
}
