/**
 * The peers benchmark's workload: the routing benchmark's chat with a long system prompt every
 * conversation shares (src/bench/workloads/sharegpt-chat.ts `systemPromptTokens`: instructions plus
 * real MTRAG reference text) — the production shape of the routing issue.
 *
 * Responses are not streamed here: the harness measures what a router adds from the replica's own
 * wall time (x-sim-wall-ms), which only a whole response carries; streaming does not change what
 * the routers see of a request (a real Envoy ends its ext_proc stream at the last byte either way).
 */
import { shareGptChatWorkload } from "../../../src/bench/workloads/sharegpt-chat";
import type { Workload } from "../../../src/bench/workloads/workload";

export interface SharedSystemChatParams {
  readonly seed: number;
  /** New conversations arrive for this long (model time; their later turns may run past it). */
  readonly durationS: number;
  readonly conversationsPerS: number;
  readonly thinkMeanMs: number;
  /** Cap on turns per conversation (the chat workload's default is 40). */
  readonly maxTurns?: number;
  /** Approximate length of the system prompt every conversation shares. */
  readonly systemTokens: number;
}

export function sharedSystemChatWorkload(p: SharedSystemChatParams): Promise<Workload> {
  return shareGptChatWorkload({
    seed: p.seed,
    durationS: p.durationS,
    conversationsPerS: p.conversationsPerS,
    thinkMeanMs: p.thinkMeanMs,
    ...(p.maxTurns ? { maxTurns: p.maxTurns } : {}),
    systemPromptTokens: p.systemTokens,
    streamFraction: 0,
  });
}
