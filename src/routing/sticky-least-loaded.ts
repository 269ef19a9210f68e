/**
 * Sticky-Least-Loaded: the routing policy. Pure and synchronous: no clock, no randomness, no I/O;
 * the tie-break seed comes from the caller (the request's first block key, so one prefix always
 * breaks ties the same way and different prefixes spread).
 *
 * 1. Load guard. With L_min the least in-flight count among the candidates, a worker is
 *    overloaded when   inFlight − L_min > absolute   AND   inFlight > relative × L_min
 *    (SGLang's balance rule, applied per worker). Overloaded workers lose their affinity.
 *    Defaults: absolute 8, relative 1.5. The least-loaded worker is never overloaded.
 * 2. Among the workers that are not overloaded, pick the longest leading run of cached blocks;
 *    ties go to the fewest in-flight, then to the highest rendezvous rank for the seed.
 * 3. Outcome: "hit" when the pick holds at least one block, otherwise "miss" (the pick is then the
 *    least-loaded worker overall). `guardTripped` says a longer match existed on an overloaded worker.
 */
import type { LoadGuard, PolicyDecision, PrefixMatch } from "./policy";
import { rendezvousRank, type WorkerView } from "./worker-view";

export function isOverloaded(inFlight: number, minInFlight: number, guard: LoadGuard): boolean {
  return inFlight - minInFlight > guard.absolute && inFlight > guard.relative * minInFlight;
}

export function stickyLeastLoaded(candidates: readonly WorkerView[], match: PrefixMatch, guard: LoadGuard): PolicyDecision {
  if (candidates.length === 0) return { kind: "reject", reason: "no-candidates" };
  let minInFlight = Infinity;
  let bestRunAnywhere = 0;
  for (const w of candidates) {
    minInFlight = Math.min(minInFlight, w.inFlight);
    bestRunAnywhere = Math.max(bestRunAnywhere, match.runs.get(w.id) ?? 0);
  }

  let pick: WorkerView | undefined;
  let pickRun = -1;
  let pickRank = -1;
  for (const w of candidates) {
    if (isOverloaded(w.inFlight, minInFlight, guard)) continue;
    const run = match.runs.get(w.id) ?? 0;
    const rank = rendezvousRank(match.seed, w);
    const better =
      run > pickRun ||
      (run === pickRun && pick !== undefined && (w.inFlight < pick.inFlight || (w.inFlight === pick.inFlight && rank > pickRank)));
    if (better) {
      pick = w;
      pickRun = run;
      pickRank = rank;
    }
  }
  // Unreachable with a non-empty candidate list (the least-loaded worker always qualifies).
  if (!pick) return { kind: "reject", reason: "no-candidates" };

  return {
    kind: "route",
    worker: pick,
    outcome: pickRun > 0 ? "hit" : "miss",
    matchedBlocks: pickRun,
    totalBlocks: match.totalBlocks,
    candidates: candidates.length,
    guardTripped: bestRunAnywhere > pickRun,
  };
}
