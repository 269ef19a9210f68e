/**
 * The one place a policy is built from its name: an exhaustive switch, so a new PolicyKind cannot
 * be forgotten. Specs are copied, never mutated (house style 11).
 */
import type { LoadGuard } from "../policy";
import { consistentHash, type ConsistentHashOptions } from "./consistent-hash";
import { leastLoaded } from "./least-loaded";
import { minTtft, type MinTtftOptions } from "./min-ttft";
import { randomPick } from "./random-pick";
import { roundRobin } from "./round-robin";
import type { PopularityView, RoutingPolicy } from "./routing-policy";
import { stickyLeastLoadedPolicy } from "./sticky-least-loaded-policy";

export type PolicySpec =
  | { readonly kind: "round-robin" }
  | { readonly kind: "random"; readonly random: () => number }
  | { readonly kind: "least-loaded" }
  | ({ readonly kind: "consistent-hash" } & ConsistentHashOptions)
  | { readonly kind: "sticky-least-loaded"; readonly loadGuard?: LoadGuard; readonly minGainBlocks?: number; readonly popularity?: PopularityView }
  | ({ readonly kind: "min-ttft" } & MinTtftOptions);

export function createPolicy(spec: PolicySpec): RoutingPolicy {
  switch (spec.kind) {
    case "round-robin":
      return roundRobin();
    case "random":
      return randomPick(spec.random);
    case "least-loaded":
      return leastLoaded();
    case "consistent-hash":
      return consistentHash({ ...spec });
    case "sticky-least-loaded":
      return stickyLeastLoadedPolicy(spec.loadGuard, spec.minGainBlocks, spec.popularity);
    case "min-ttft":
      return minTtft({ ...spec });
    default:
      return unknownPolicy(spec);
  }
}

function unknownPolicy(spec: never): never {
  throw new Error(`unknown policy ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
}
