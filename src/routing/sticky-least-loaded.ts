/**
 * Sticky-Least-Loaded: the routing policy. Pure and synchronous: no clock, no randomness, no I/O;
 * the tie-break seed comes from the caller (the request's last full block key: requests that share
 * only a common head — a system prompt — still spread, while one request always breaks ties the
 * same way).
 *
 * Load is a worker's outstanding sequences (worker-view.ts outstanding(): the load board's
 * queued + running sequences where there is one, else the in-flight count).
 *
 * 1. Load guard. With L_min the least load among the candidates, a worker is
 *    overloaded when   load − L_min > absolute   AND   load > relative × L_min
 *    (SGLang's balance rule, applied per worker). Overloaded workers lose their affinity.
 *    Defaults: absolute 8, relative 1.5. The least-loaded worker is never overloaded.
 * 2. Among the workers that are not overloaded, pick the longest leading run of cached blocks;
 *    ties go to the least load, then to the highest rendezvous rank for the seed.
 * 3. Minimum gain: the pick keeps its affinity only when its match beats the least-loaded worker's
 *    (ties by rendezvous rank) by at least minGainBlocks (default 16 = 256 tokens); otherwise the
 *    least-loaded worker takes the request. The lead is counted in blocks weighted by their
 *    shared-prefix charge (shared-prefix.ts): a block that recurs on every worker anyway (a system
 *    prompt most requests carry) weighs almost nothing, a conversation's own block weighs 1, a
 *    group's prompt that 16 requests share over 8 workers ½ — a shared head is no gain, however long.
 *    Without this, a system prompt every request shares draws all new conversations to whichever
 *    workers cached it first, while the rest idle.
 * 4. Outcome: "hit" when the pick holds at least one block, otherwise "miss". `guardTripped` says a
 *    longer match was on an overloaded worker; `gainDeclined` that it was too short to follow.
 */
import type { LoadGuard, PolicyDecision, PrefixMatch, StickyParams } from "./policy";
import { leastLoaded, outstanding, rendezvousRank, type WorkerView } from "./worker-view";

export function isOverloaded(inFlight: number, minInFlight: number, guard: LoadGuard): boolean {
  return inFlight - minInFlight > guard.absolute && inFlight > guard.relative * minInFlight;
}

/** Blocks [from, to) of a chain, each weighted by its shared-prefix charge (1 past the shared head). */
export function weightedLead(from: number, to: number, sharedCharges: readonly number[]): number {
  let lead = 0;
  for (let k = from; k < to; k++) lead += k < sharedCharges.length ? sharedCharges[k] : 1;
  return lead;
}

/** `sharedCharges`: the charge of each block of the request's shared head (shared-prefix.ts sharedHeadCharges). */
export function stickyLeastLoaded(candidates: readonly WorkerView[], match: PrefixMatch, params: StickyParams, sharedCharges: readonly number[] = []): PolicyDecision {
  const guard: LoadGuard = params;
  if (candidates.length === 0) return { kind: "reject", reason: "no-candidates" };
  let minInFlight = Infinity;
  let bestRunAnywhere = 0;
  for (const w of candidates) {
    minInFlight = Math.min(minInFlight, outstanding(w));
    bestRunAnywhere = Math.max(bestRunAnywhere, match.runs.get(w.id) ?? 0);
  }

  let pick: WorkerView | undefined;
  let pickRun = -1;
  let pickRank = -1;
  for (const w of candidates) {
    if (isOverloaded(outstanding(w), minInFlight, guard)) continue;
    const run = match.runs.get(w.id) ?? 0;
    const rank = rendezvousRank(match.seed, w);
    const better =
      run > pickRun ||
      (run === pickRun && pick !== undefined && (outstanding(w) < outstanding(pick) || (outstanding(w) === outstanding(pick) && rank > pickRank)));
    if (better) {
      pick = w;
      pickRun = run;
      pickRank = rank;
    }
  }
  // Unreachable with a non-empty candidate list (the least-loaded worker always qualifies).
  if (!pick) return { kind: "reject", reason: "no-candidates" };

  let gainDeclined = false;
  if (params.minGainBlocks > 0 && pickRun > 0) {
    const idle = leastLoaded(candidates, match.seed);
    const idleRun = idle ? (match.runs.get(idle.id) ?? 0) : 0;
    if (idle && idle.id !== pick.id && weightedLead(idleRun, pickRun, sharedCharges) < params.minGainBlocks) {
      pick = idle;
      pickRun = idleRun;
      gainDeclined = true;
    }
  }

  return {
    kind: "route",
    worker: pick,
    outcome: pickRun > 0 ? "hit" : "miss",
    matchedBlocks: pickRun,
    totalBlocks: match.totalBlocks,
    candidates: candidates.length,
    guardTripped: bestRunAnywhere > pickRun && !gainDeclined,
    ...(gainDeclined ? { gainDeclined } : {}),
  };
}
