/** What the decision core sees of a worker: a frozen snapshot, no I/O handles. */
import type { WorkerId } from "../state/cache-index";
import { mix32 } from "../common/mix32";

export interface WorkerView {
  readonly id: WorkerId;
  /** ip:port Envoy routes to. */
  readonly address: string;
  /** Requests this router sent to the worker whose Envoy stream has not ended yet. */
  readonly inFlight: number;
  /** Outstanding work on the worker (routing/load/load-board.ts); absent where nobody measures it. */
  readonly load?: WorkerLoad;
}

/** A worker's outstanding work as the router sees it: its own ledger combined with the worker's /metrics. */
export interface WorkerLoad {
  /** Prompt tokens waiting to be prefilled. */
  readonly queuedTokens: number;
  /** Their compute (cost model), ms. */
  readonly queuedMs: number;
  /** Sequences on the worker, queued or decoding. */
  readonly running: number;
  /** KV tokens the running sequences hold (what each decode step reads). */
  readonly kvTokens: number;
  /** Age of the /metrics sample in this view; null when the worker was never scraped (ledger only). */
  readonly sampleAgeMs: number | null;
}

/** 32-bit FNV-1a of a string: cheap, stable, good enough to spread tie-breaks. */
export function fnv1a32(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Rendezvous (highest-random-weight) rank of a worker for a tie-break seed: equal seeds rank
 * workers the same way, different seeds spread evenly.
 */
export function rendezvousRank(seed: number, worker: WorkerView): number {
  return mix32((fnv1a32(worker.id) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0);
}

/**
 * A worker's outstanding sequences: the load view's queued + running ones where there is a load
 * view (it outlives a streaming response's headers), else the requests whose stream is open.
 */
export function outstanding(w: WorkerView): number {
  return w.load ? w.load.running : w.inFlight;
}

/** The least-loaded workers' best by rendezvous rank (load: outstanding()); undefined for an empty list. */
export function leastLoaded(workers: readonly WorkerView[], seed: number): WorkerView | undefined {
  let best: WorkerView | undefined;
  let bestRank = -1;
  for (const w of workers) {
    const rank = rendezvousRank(seed, w);
    if (!best || outstanding(w) < outstanding(best) || (outstanding(w) === outstanding(best) && rank > bestRank)) {
      best = w;
      bestRank = rank;
    }
  }
  return best;
}
