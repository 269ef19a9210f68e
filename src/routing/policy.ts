/** Types shared by routing policies: what goes in (a snapshot and a match), what comes out. */
import type { WorkerId } from "../state/cache-index";
import type { WorkerView } from "./worker-view";

export interface LoadGuard {
  /** In-flight requests above the least-loaded worker tolerated before affinity is dropped. */
  readonly absolute: number;
  /** Ratio over the least-loaded worker's in-flight count tolerated before affinity is dropped. */
  readonly relative: number;
}

export interface PrefixMatch {
  /** Full blocks in the request's prompt. */
  readonly totalBlocks: number;
  /** Leading cached blocks per candidate worker (absent = 0). */
  readonly runs: ReadonlyMap<WorkerId, number>;
  /** Tie-break seed (uint32): equal for equal prefixes. */
  readonly seed: number;
}

export type PolicyDecision =
  | {
      readonly kind: "route";
      readonly worker: WorkerView;
      readonly outcome: "hit" | "miss";
      readonly matchedBlocks: number;
      readonly totalBlocks: number;
      readonly candidates: number;
      /** A longer match existed, but only on workers the load guard excluded. */
      readonly guardTripped: boolean;
    }
  | { readonly kind: "reject"; readonly reason: "no-candidates" };
