/**
 * Round-robin: request n goes to workers[n mod N] of the snapshot (stable worker order).
 * Cache-blind and load-blind; the textbook baseline. No parameters.
 */
import type { PolicyDecision } from "../policy";
import { blindRoute, type RoutingInput, type RoutingPolicy } from "./routing-policy";

export function roundRobin(): RoutingPolicy {
  return {
    kind: "round-robin",
    usesMatch: false,
    decide(input: RoutingInput): PolicyDecision {
      const n = input.workers.length;
      if (n === 0) return { kind: "reject", reason: "no-candidates" };
      return blindRoute(input.workers[input.sequence % n], input);
    },
  };
}
