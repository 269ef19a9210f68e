/** Types shared by routing policies: what goes in (a snapshot and a match), what comes out. */
import type { WorkerId } from "../state/cache-index";
import type { WorkerView } from "./worker-view";

export interface LoadGuard {
  /** In-flight requests above the least-loaded worker tolerated before affinity is dropped. */
  readonly absolute: number;
  /** Ratio over the least-loaded worker's in-flight count tolerated before affinity is dropped. */
  readonly relative: number;
}

/** Sticky-Least-Loaded's parameters: the load guard plus the minimum gain worth keeping affinity for. */
export interface StickyParams extends LoadGuard {
  /**
   * Affinity is kept only when the pick's match beats the least-loaded worker's by at least this
   * many blocks; a shorter lead (say, a shared system prompt) is not worth piling requests on one
   * worker for. 0 = always keep affinity.
   */
  readonly minGainBlocks: number;
}

export interface PrefixMatch {
  /** Full blocks in the request's prompt. */
  readonly totalBlocks: number;
  /** Leading cached blocks per candidate worker (absent = 0). */
  readonly runs: ReadonlyMap<WorkerId, number>;
  /** Tie-break seed (uint32): equal for equal prefixes. */
  readonly seed: number;
}

/** What a worker would cost this request, by min-ttft's estimate (policies/min-ttft.ts), ms. */
export interface TtftEstimate {
  readonly worker: WorkerView;
  /** Leading blocks of the prompt cached there (index + speculative records). */
  readonly matchedBlocks: number;
  /** Prompt tokens it would compute (vLLM recomputes at least the last one). */
  readonly uncachedTokens: number;
  /** Waiting for the prefill work queued ahead (its compute and its steps). */
  readonly queueMs: number;
  /** Fixed cost of this request's own step, with the running decodes' KV reads. */
  readonly stepMs: number;
  /** This request's own prefill compute. */
  readonly prefillMs: number;
  /** queueMs + stepMs + prefillMs: the estimated time to first token. */
  readonly ttftMs: number;
  /** Part of the prefill that a shared prefix spares in the charge (shared-prefix.ts). */
  readonly sharedDiscountMs: number;
  /** Delay the charged prefill adds to the requests that reach the worker while it is pending. */
  readonly othersMs: number;
  /** ttftMs − sharedDiscountMs + othersMs: what the policy minimises. */
  readonly scoreMs: number;
}

/** Which term made min-ttft's pick beat the runner-up. */
export type DecidingTerm = "cache" | "load" | "shared-prefix" | "tie" | "only-candidate";

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
      /** A longer match existed, but it led the least-loaded worker's by fewer than minGainBlocks. */
      readonly gainDeclined?: boolean;
      /** min-ttft: every candidate's estimate, best score first (the pick is [0]). */
      readonly estimates?: readonly TtftEstimate[];
      /** min-ttft: the term that decided. */
      readonly decidedBy?: DecidingTerm;
    }
  | { readonly kind: "reject"; readonly reason: "no-candidates" };
