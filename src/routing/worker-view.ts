/** What the decision core sees of a worker: a frozen snapshot, no I/O handles. */
import type { WorkerId } from "../state/cache-index";

export interface WorkerView {
  readonly id: WorkerId;
  /** ip:port Envoy routes to. */
  readonly address: string;
  /** Requests this router sent to the worker whose Envoy stream has not ended yet. */
  readonly inFlight: number;
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
  return fmix32((fnv1a32(worker.id) ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0);
}

/** MurmurHash3's finalizer: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The least-loaded workers' best by rendezvous rank; undefined for an empty list. */
export function leastLoaded(workers: readonly WorkerView[], seed: number): WorkerView | undefined {
  let best: WorkerView | undefined;
  let bestRank = -1;
  for (const w of workers) {
    const rank = rendezvousRank(seed, w);
    if (!best || w.inFlight < best.inFlight || (w.inFlight === best.inFlight && rank > bestRank)) {
      best = w;
      bestRank = rank;
    }
  }
  return best;
}
