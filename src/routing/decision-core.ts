/**
 * The synchronous heart of a routing decision, shared by the server (router/request-router.ts) and
 * the discrete-event benchmark, so both run the very same code: load snapshot → policy → the
 * bookkeeping a decision leaves behind (in-flight count, load ledger entry, block popularity).
 * The cache lookup (async, I/O) and the speculative record stay with the caller.
 *
 * Ledger entry of a routed request (load-ledger.ts): its uncached prefill on the chosen worker and
 * the compute of it; predicted first token = now + the pick's estimated TTFT; predicted completion
 * = first token + expectedOutputTokens × the decode step it was expected to see
 * (d0 + k × the worker's KV tokens). release(), at the end of the request's Envoy stream, ends its
 * in-flight count and its ledger entry (load-ledger.ts end(): a streaming request's predicted
 * prefill outlives a stream that ends early).
 * Parameter: expectedOutputTokens (routing.load.expectedOutputTokens, default 256).
 */
import type { BlockKey } from "../prefix/block-keys";
import type { WorkerId } from "../state/cache-index";
import { prefillComputeMs, type CostModel } from "./cost-model";
import type { InFlightTracker, WorkerAddress } from "./in-flight-tracker";
import type { LoadBoard } from "./load/load-board";
import type { PolicyDecision, PrefixMatch, TtftEstimate } from "./policy";
import { estimateFor } from "./policies/min-ttft";
import type { KeyPopularity } from "./policies/key-popularity";
import type { RoutingPolicy } from "./policies/routing-policy";
import { NO_SHARED_PREFIX } from "./shared-prefix";
import type { WorkerView } from "./worker-view";

export interface DecisionCoreDeps {
  readonly policy: RoutingPolicy;
  readonly inFlight: InFlightTracker;
  readonly board: LoadBoard;
  /** Block popularity of routed requests, fed after each decision (min-ttft, consistent-hash, sticky-least-loaded read it). */
  readonly popularity: KeyPopularity | null;
  readonly cost: CostModel;
  readonly blockSize: number;
  readonly expectedOutputTokens: number;
}

export interface DecisionInput {
  readonly workers: readonly WorkerAddress[];
  readonly keys: readonly BlockKey[];
  readonly promptTokens: number;
  /** The index's answer (policies with usesMatch), or null. */
  readonly match: PrefixMatch | null;
  readonly nowMs: number;
}

export interface Commitment {
  /** The request's Envoy stream ended: in-flight count and ledger entry. Idempotent. */
  readonly release: () => void;
  /** The chosen worker's estimate the ledger entry was made from. */
  readonly estimate: TtftEstimate;
}

export const DEFAULT_EXPECTED_OUTPUT_TOKENS = 256;

/** Arrival rate over the last `size` routed requests: a ring of their times. */
class ArrivalRate {
  private readonly times: number[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  observe(atMs: number): void {
    if (this.times.length < this.size) this.times.push(atMs);
    else this.times[this.next] = atMs;
    this.next = (this.next + 1) % this.size;
  }
  /** Requests per ms; 0 until two arrivals span some time. */
  perMs(nowMs: number): number {
    if (this.times.length < 2) return 0;
    const oldest = this.times.length < this.size ? this.times[0] : this.times[this.next];
    const span = nowMs - oldest;
    return span > 0 ? this.times.length / span : 0;
  }
}

export class DecisionCore {
  private sequence = 0;
  private readonly arrivals = new ArrivalRate(256);

  constructor(private readonly deps: DecisionCoreDeps) {}

  get policy(): RoutingPolicy {
    return this.deps.policy;
  }

  get board(): LoadBoard {
    return this.deps.board;
  }

  /** The candidates as the policy sees them. */
  snapshot(workers: readonly WorkerAddress[], nowMs: number): readonly WorkerView[] {
    return this.deps.board.snapshot(workers, (id) => this.deps.inFlight.inFlight(id), nowMs);
  }

  /** The policy's decision; no side effects. */
  decide(input: DecisionInput, views: readonly WorkerView[] = this.snapshot(input.workers, input.nowMs)): PolicyDecision {
    return this.deps.policy.decide({
      workers: views,
      keys: input.keys,
      match: this.deps.policy.usesMatch ? input.match : null,
      sequence: this.sequence++,
      promptTokens: input.promptTokens,
      reuseScale: this.reuseScale(input.workers),
      arrivalsPerMs: input.workers.length > 0 ? this.arrivals.perMs(input.nowMs) / input.workers.length : 0,
    });
  }

  /** Records a routed decision: in-flight count, load ledger, popularity. */
  commit(decision: Extract<PolicyDecision, { kind: "route" }>, input: DecisionInput, streaming: boolean): Commitment {
    const { cost, blockSize, board } = this.deps;
    const estimate = decision.estimates?.[0] ?? estimateFor(decision.worker, decision.matchedBlocks, Math.max(1, input.promptTokens), blockSize, cost, NO_SHARED_PREFIX);
    const firstTokenAtMs = input.nowMs + estimate.ttftMs;
    const decodeStepMs = cost.decodeBaseMs + cost.decodePerKvTokenMs * (decision.worker.load?.kvTokens ?? 0);
    const entry = board.record(
      {
        worker: decision.worker.id,
        promptTokens: input.promptTokens,
        uncachedTokens: estimate.uncachedTokens,
        prefillMs: prefillComputeMs(cost, estimate.uncachedTokens, input.promptTokens - estimate.uncachedTokens),
        firstTokenAtMs,
        doneAtMs: firstTokenAtMs + this.deps.expectedOutputTokens * decodeStepMs,
      },
      input.nowMs,
    );
    this.deps.popularity?.observe(input.keys);
    this.arrivals.observe(input.nowMs);
    const releaseStream = this.deps.inFlight.acquire(decision.worker.id);
    const release = () => {
      releaseStream();
      board.end(entry, streaming);
    };
    return { release, estimate };
  }

  /** Records a request routed without a policy decision (fallback): in-flight count only. */
  commitFallback(worker: WorkerId, nowMs: number): () => void {
    this.arrivals.observe(nowMs);
    return this.deps.inFlight.acquire(worker);
  }

  /**
   * min(1, cache lifetime in requests / popularity window) for shared-prefix.ts, when every
   * candidate's KV capacity is known from its metrics; 1 otherwise. Lifetime = total capacity over
   * the tokens a request leaves in the caches (its uncached prompt + expected output).
   */
  private reuseScale(workers: readonly WorkerAddress[]): number {
    const window = this.deps.popularity?.requests ?? 0;
    if (window === 0) return 1;
    let capacity = 0;
    for (const w of workers) {
      const c = this.deps.board.sampleOf(w.id)?.kvCapacityTokens;
      if (c == null) return 1;
      capacity += c;
    }
    const perRequest = this.deps.board.meanUncachedTokens + this.deps.expectedOutputTokens;
    return Math.min(1, capacity / perRequest / window);
  }
}
