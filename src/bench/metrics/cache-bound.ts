/**
 * Two properties of a workload's block-key stream, independent of any policy:
 *
 * - The single-LRU bound: replay every request, in arrival order, through ONE LRU cache holding the
 *   whole cluster's capacity (N × blocks per replica). A request hits the leading run of its prompt
 *   keys found there (at most ⌊(P−1)/blockSize⌋ blocks: vLLM always recomputes the last prompt
 *   token), then its KV — prompt and generated blocks — is inserted, head most recent. No routing
 *   policy over N separate caches of that total size does better on this stream, up to the
 *   difference between LRU and optimal replacement and timing (completion is taken as instant).
 * - The working set: distinct blocks (prompt and generated) referenced by requests that arrived in
 *   the trailing `windowMs`, averaged over the arrivals in [fromMs, untilMs) (and its peak there):
 *   what caches must hold for the reuse that happens within that window.
 */
import type { BlockKey } from "../../prefix/block-keys";
import { LruSet } from "../des/lru-set";

export interface KeyedArrival {
  readonly arrivalMs: number;
  readonly promptTokens: number;
  readonly promptKeys: readonly BlockKey[];
  /** Keys of the request's whole KV (prompt + generated full blocks), chain order. */
  readonly kvKeys: readonly BlockKey[];
}

export interface LruBound {
  readonly capacityBlocks: number;
  readonly tokenHitRate: number;
  readonly requestHitRate: number;
}

export function singleLruBound(arrivals: readonly KeyedArrival[], capacityBlocks: number, blockSize: number): LruBound {
  const lru = new LruSet(capacityBlocks);
  let prompt = 0;
  let cached = 0;
  let hitRequests = 0;
  for (const a of arrivals) {
    const hit = lru.leadingRun(a.promptKeys, Math.floor((a.promptTokens - 1) / blockSize));
    prompt += a.promptTokens;
    cached += hit * blockSize;
    if (hit > 0) hitRequests++;
    lru.touchChain(a.kvKeys);
  }
  return { capacityBlocks, tokenHitRate: prompt > 0 ? cached / prompt : 0, requestHitRate: arrivals.length ? hitRequests / arrivals.length : 0 };
}

export interface WorkingSet {
  readonly windowMs: number;
  readonly meanBlocks: number;
  readonly peakBlocks: number;
  /** Distinct blocks over the whole run. */
  readonly totalBlocks: number;
}

export function workingSet(arrivals: readonly KeyedArrival[], windowMs: number, fromMs = -Infinity, untilMs = Infinity): WorkingSet {
  const lastSeen = new Map<BlockKey, number>();
  const fifo: { at: number; keys: readonly BlockKey[] }[] = [];
  let head = 0;
  let sum = 0;
  let counted = 0;
  let peak = 0;
  const distinct = new Set<BlockKey>();
  for (const a of arrivals) {
    while (head < fifo.length && fifo[head].at < a.arrivalMs - windowMs) {
      const old = fifo[head++];
      for (const k of old.keys) if (lastSeen.get(k) === old.at) lastSeen.delete(k);
    }
    for (const k of a.kvKeys) {
      lastSeen.set(k, a.arrivalMs);
      distinct.add(k);
    }
    fifo.push({ at: a.arrivalMs, keys: a.kvKeys });
    if (a.arrivalMs < fromMs || a.arrivalMs >= untilMs) continue;
    sum += lastSeen.size;
    counted++;
    peak = Math.max(peak, lastSeen.size);
  }
  return { windowMs, meanBlocks: counted ? sum / counted : 0, peakBlocks: peak, totalBlocks: distinct.size };
}
