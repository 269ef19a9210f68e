/** What the router answers for one request: where to send it and why, or why it cannot be sent. */
import type { FailureCode } from "../failure";
import type { DecidingTerm } from "../routing/policy";
import type { WorkerView } from "../routing/worker-view";

export type Outcome = "hit" | "miss" | "fallback";

/** Why a decision is not a plain prefix decision: a fallback's failure, the load guard, or the minimum gain. */
export type RouteReason = FailureCode | "load-guard" | "min-gain";

export interface RoutedRequest {
  readonly kind: "route";
  readonly worker: WorkerView;
  readonly outcome: Outcome;
  readonly reason: RouteReason | null;
  /** Detail of the reason, for logs. */
  readonly detail: string | null;
  readonly model: string | null;
  readonly matchedBlocks: number;
  readonly totalBlocks: number;
  readonly candidates: number;
  /** Wall time of the whole decision (parse, tokenize, hash, lookup, pick), microseconds. */
  readonly decisionMicros: number;
  /** Ends this request's in-flight count on the worker. Idempotent. */
  readonly release: () => void;
  /**
   * The other eligible workers, best first: where Envoy may retry after the pick (min-ttft: by
   * charge; otherwise least outstanding work first).
   */
  readonly fallbacks?: readonly WorkerView[];
  /** Headers to set on the upstream request besides the routing ones (e.g. W3C traceparent). */
  readonly extraHeaders?: ReadonlyArray<readonly [string, string]>;
  /** min-ttft: the term that made the pick beat the runner-up; null otherwise. */
  readonly decidedBy: DecidingTerm | null;
  /** The pick's estimated time to first token, ms; null for a fallback. */
  readonly estimateMs: number | null;
  /**
   * The decision keyed only the prompt's head: no worker held all of it, so no match could reach
   * further (totalBlocks counts the head's blocks; the token count the ledger got is estimated).
   */
  readonly headOnly?: boolean;
}

export interface RejectedRequest {
  readonly kind: "reject";
  /** HTTP status for Envoy's ImmediateResponse. */
  readonly status: 503;
  readonly reason: "no-eligible-worker";
  readonly detail: string;
  readonly model: string | null;
  readonly decisionMicros: number;
}

export type RouteResult = RoutedRequest | RejectedRequest;

/** A request as the inner code sees it: no Envoy protocol state (house style 3). */
export interface RouteRequest {
  readonly method: string;
  readonly path: string;
  /** null when the request has no body. */
  readonly body: Buffer | null;
  /** Gateway API Inference Extension subset hint: the only addresses allowed; null = no hint. */
  readonly subset: readonly string[] | null;
  /** Set when the body arrived in a mode we cannot route on; the request falls back. */
  readonly bodyUnavailable?: FailureCode;
  /** Request headers (lower-case names), for trace context and logs. */
  readonly headers?: ReadonlyMap<string, string>;
}
