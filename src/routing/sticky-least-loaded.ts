/**
 * Sticky-Least-Loaded: the routing policy. Pure and synchronous: no clock, no randomness, no I/O;
 * the tie-break seed comes from the caller (the request's last full block key: requests that share
 * only a common head — a system prompt — still spread, while one request always breaks ties the
 * same way).
 *
 * 1. Load guard. With L_min the least in-flight count among the candidates, a worker is
 *    overloaded when   inFlight − L_min > absolute   AND   inFlight > relative × L_min
 *    (SGLang's balance rule, applied per worker). Overloaded workers lose their affinity.
 *    Defaults: absolute 8, relative 1.5. The least-loaded worker is never overloaded.
 * 2. Among the workers that are not overloaded, pick the longest leading run of cached blocks;
 *    ties go to the fewest in-flight, then to the highest rendezvous rank for the seed.
 * 3. Minimum gain: the pick keeps its affinity only when its match beats the least-loaded worker's
 *    (ties by rendezvous rank) by at least minGainBlocks (default 16 = 256 tokens); otherwise the
 *    least-loaded worker takes the request. Without this, a short prefix every request shares (a
 *    system prompt) draws all new conversations to whichever worker cached it first, while the
 *    load guard never fires at low load — measured in docs/benchmark.md.
 * 4. Outcome: "hit" when the pick holds at least one block, otherwise "miss". `guardTripped` says a
 *    longer match was on an overloaded worker; `gainDeclined` that it was too short to follow.
 */
import type { LoadGuard, PolicyDecision, PrefixMatch, StickyParams } from "./policy";
import { leastLoaded, rendezvousRank, type WorkerView } from "./worker-view";

export function isOverloaded(inFlight: number, minInFlight: number, guard: LoadGuard): boolean {
  return inFlight - minInFlight > guard.absolute && inFlight > guard.relative * minInFlight;
}

export function stickyLeastLoaded(candidates: readonly WorkerView[], match: PrefixMatch, params: StickyParams): PolicyDecision {
  const guard: LoadGuard = params;
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

  let gainDeclined = false;
  if (params.minGainBlocks > 0 && pickRun > 0) {
    const idle = leastLoaded(candidates, match.seed);
    const idleRun = idle ? (match.runs.get(idle.id) ?? 0) : 0;
    if (idle && idle.id !== pick.id && pickRun - idleRun < params.minGainBlocks) {
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
