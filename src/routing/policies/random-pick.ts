/**
 * Random: a uniformly random worker per request. The random source is injected (a seeded
 * generator in the benchmark), so a run is reproducible. Parameter: random () → [0, 1).
 */
import type { PolicyDecision } from "../policy";
import { blindRoute, type RoutingInput, type RoutingPolicy } from "./routing-policy";

export function randomPick(random: () => number): RoutingPolicy {
  return {
    kind: "random",
    usesMatch: false,
    decide(input: RoutingInput): PolicyDecision {
      const n = input.workers.length;
      if (n === 0) return { kind: "reject", reason: "no-candidates" };
      return blindRoute(input.workers[Math.min(n - 1, Math.floor(random() * n))], input);
    },
  };
}
