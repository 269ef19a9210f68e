/**
 * Least-loaded: the worker with the least outstanding work (worker-view.ts outstanding(): the load
 * view's sequences, else in-flight requests); ties go to the highest rendezvous rank for a seed
 * mixed from the request's ordinal, so ties spread evenly instead of favouring one worker (the
 * router's fallback for requests it cannot decide on seeds with a random number). No parameters.
 */
import type { PolicyDecision } from "../policy";
import { leastLoaded as pickLeastLoaded } from "../worker-view";
import { blindRoute, mix32, type RoutingInput, type RoutingPolicy } from "./routing-policy";

export function leastLoaded(): RoutingPolicy {
  return {
    kind: "least-loaded",
    usesMatch: false,
    decide(input: RoutingInput): PolicyDecision {
      const pick = pickLeastLoaded(input.workers, mix32(input.sequence + 0x9e3779b9));
      if (!pick) return { kind: "reject", reason: "no-candidates" };
      return blindRoute(pick, input);
    },
  };
}
