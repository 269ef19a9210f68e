/**
 * The production Sticky-Least-Loaded (../sticky-least-loaded.ts), unchanged, behind the benchmark's
 * policy contract. What it is fed decides what it is: events + speculative records (prefix-router),
 * its own past decisions (approximate), or the replicas' exact caches (oracle).
 *
 * Parameters: loadGuard, default the production default { absolute: 8, relative: 1.5 };
 * minGainBlocks, default 0 (= production, unchanged). An experimental knob for the benchmark: when
 * the pick's match beats the least-loaded worker's by fewer than minGainBlocks, the request goes to
 * the least-loaded worker instead — a short shared prefix (a system prompt) is not worth queueing
 * behind other requests for, and following it starves replicas that never cached it.
 */
import type { LoadGuard, PolicyDecision } from "../policy";
import { stickyLeastLoaded as decideSticky } from "../sticky-least-loaded";
import { leastLoaded } from "../worker-view";
import { prefixMatch, type RoutingInput, type RoutingPolicy } from "./routing-policy";

export const DEFAULT_LOAD_GUARD: LoadGuard = Object.freeze({ absolute: 8, relative: 1.5 });

const NO_RUNS: ReadonlyMap<string, number> = new Map();

export function stickyLeastLoadedPolicy(loadGuard: LoadGuard = DEFAULT_LOAD_GUARD, minGainBlocks = 0): RoutingPolicy {
  const guard = { ...loadGuard };
  return {
    kind: "sticky-least-loaded",
    usesMatch: true,
    decide(input: RoutingInput): PolicyDecision {
      const match = input.match ?? prefixMatch(input.keys, NO_RUNS);
      const decision = decideSticky(input.workers, match, guard);
      if (minGainBlocks <= 0 || decision.kind !== "route" || decision.outcome !== "hit") return decision;
      const idle = leastLoaded(input.workers, match.seed)!;
      const idleRun = match.runs.get(idle.id) ?? 0;
      if (idle.id === decision.worker.id || decision.matchedBlocks - idleRun >= minGainBlocks) return decision;
      return { ...decision, worker: idle, outcome: idleRun > 0 ? "hit" : "miss", matchedBlocks: idleRun };
    },
  };
}
