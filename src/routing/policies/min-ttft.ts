/**
 * min-ttft: send each request where it is estimated to get its first token soonest.
 *
 * For every eligible worker, with the cost model of cost-model.ts:
 *   cached   C = the worker's leading cached run (index + speculative records), in tokens;
 *              uncached U = P − C, at least 1 (vLLM always recomputes the last prompt token)
 *   queue    = the rest of the step running now + compute of the prefill queued ahead
 *              + (steps − 1) × step cost, steps = ⌈(queued tokens + U) / maxBatchedTokens⌉
 *              (FCFS, chunked prefill). vLLM runs steps back to back while sequences run, and a
 *              new request joins at the next step boundary: on average half a decode step
 *              (d0 + k × KV tokens) away on a worker with running sequences, none on an idle one.
 *   step     = max(t0, d0 if decodes run) + k × KV tokens of the running sequences
 *   prefill  = b·U + c·U·(C + U/2)
 *   TTFT     = queue + step + prefill
 * and picks the lowest charge. The charge is the sum of the TTFTs the decision causes, this
 * request's and the others':
 *   work     W = prefill − the shared-prefix discount (shared-prefix.ts: a prefix every worker will
 *              cache anyway is not charged to the workers that lack it yet)
 *   others   = W × λ × (queue + W): every request that reaches the worker while this work is
 *              pending (λ = requests per ms per worker, measured over the router's recent
 *              decisions) waits W longer — recomputing a prefix cached elsewhere is paid by the
 *              requests behind it, nothing at low load, much when replicas are busy
 *   charge   = queue + step + W + others
 * Exact ties go to the
 * highest rendezvous rank for the request's seed (its last full block), so requests that differ
 * only after a shared head spread evenly and one request always breaks ties the same way.
 * The load (queued tokens and ms, sequences, KV tokens) comes from load-board.ts; a worker
 * without a load view counts as idle.
 *
 * Parameters: the cost model (routing.costModel, defaults in cost-model.ts) and the block size.
 * No thresholds: a cached prefix is followed exactly as long as it saves more than the queue costs.
 */
import { DEFAULT_COST_MODEL, prefillComputeMs, prefillStepOverheadMs, prefillSteps, type CostModel } from "../cost-model";
import type { DecidingTerm, PolicyDecision, TtftEstimate } from "../policy";
import { NO_SHARED_PREFIX, sharedPrefix, type SharedPrefix } from "../shared-prefix";
import { rendezvousRank, type WorkerView } from "../worker-view";
import type { PopularityView, RoutingInput, RoutingPolicy } from "./routing-policy";

export interface MinTtftOptions {
  readonly cost?: CostModel;
  readonly blockSize: number;
  /** Block popularity of routed requests (shared-prefix charge); none = no discount. */
  readonly popularity?: PopularityView;
}

const NO_RUNS: ReadonlyMap<string, number> = new Map();

export function minTtft(options: MinTtftOptions): RoutingPolicy {
  const cost = { ...(options.cost ?? DEFAULT_COST_MODEL) };
  const { blockSize, popularity } = options;
  return {
    kind: "min-ttft",
    usesMatch: true,
    decide(input: RoutingInput): PolicyDecision {
      const { workers, keys } = input;
      if (workers.length === 0) return { kind: "reject", reason: "no-candidates" };
      const promptTokens = Math.max(input.promptTokens ?? keys.length * blockSize, 1);
      const runs = input.match?.runs ?? NO_RUNS;
      const seed = input.match?.seed ?? 0;
      const shared = popularity && keys.length > 0
        ? sharedPrefix({ keys, popularity, workers: workers.length, reuseScale: input.reuseScale ?? 1, blockSize, cost })
        : NO_SHARED_PREFIX;
      const ranked = workers
        .map((w) => ({ estimate: estimateFor(w, runs.get(w.id) ?? 0, promptTokens, blockSize, cost, shared, input.arrivalsPerMs ?? 0), rank: rendezvousRank(seed, w) }))
        .sort((a, b) => a.estimate.scoreMs - b.estimate.scoreMs || b.rank - a.rank);
      const estimates = ranked.map((r) => r.estimate);
      const pick = estimates[0];
      const bestRun = estimates.reduce((m, e) => Math.max(m, e.matchedBlocks), 0);
      return {
        kind: "route",
        worker: pick.worker,
        outcome: pick.matchedBlocks > 0 ? "hit" : "miss",
        matchedBlocks: pick.matchedBlocks,
        totalBlocks: keys.length,
        candidates: workers.length,
        // A longer cached run existed, but the queue in front of it cost more than it saves.
        guardTripped: bestRun > pick.matchedBlocks,
        estimates,
        decidedBy: decidingTerm(estimates),
      };
    },
  };
}

export function estimateFor(worker: WorkerView, cachedBlocks: number, promptTokens: number, blockSize: number, cost: CostModel, shared: SharedPrefix, arrivalsPerMs = 0): TtftEstimate {
  const matchedBlocks = Math.min(cachedBlocks, Math.floor(promptTokens / blockSize));
  const cached = Math.min(matchedBlocks * blockSize, promptTokens - 1);
  const uncached = promptTokens - cached;
  const load = worker.load;
  const queuedTokens = load?.queuedTokens ?? 0;
  const stepMs = prefillStepOverheadMs(cost, load?.running ?? 0, load?.kvTokens ?? 0);
  const steps = prefillSteps(cost, queuedTokens, uncached);
  const running = load?.running ?? 0;
  const currentStepRestMs = running > 0 ? (cost.decodeBaseMs + cost.decodePerKvTokenMs * (load?.kvTokens ?? 0)) / 2 : 0;
  const queueMs = currentStepRestMs + (load?.queuedMs ?? 0) + (steps - 1) * stepMs;
  const prefillMs = prefillComputeMs(cost, uncached, cached);
  const ttftMs = queueMs + stepMs + prefillMs;
  const sharedDiscountMs = Math.min(prefillMs, shared.discountMs(matchedBlocks));
  const work = prefillMs - sharedDiscountMs;
  const othersMs = work * arrivalsPerMs * (queueMs + work);
  return { worker, matchedBlocks, uncachedTokens: uncached, queueMs, stepMs, prefillMs, ttftMs, sharedDiscountMs, othersMs, scoreMs: ttftMs - sharedDiscountMs + othersMs };
}

/** The term with the largest share of the pick's lead over the runner-up. */
export function decidingTerm(estimates: readonly TtftEstimate[]): DecidingTerm {
  if (estimates.length < 2) return "only-candidate";
  const [pick, next] = estimates;
  if (next.scoreMs - pick.scoreMs <= 1e-9) return "tie";
  const lead: [DecidingTerm, number][] = [
    ["load", next.queueMs + next.stepMs - (pick.queueMs + pick.stepMs)],
    ["cache", next.prefillMs + next.othersMs - (pick.prefillMs + pick.othersMs)],
    ["shared-prefix", pick.sharedDiscountMs - next.sharedDiscountMs],
  ];
  return lead.reduce((best, t) => (t[1] > best[1] ? t : best))[0];
}

