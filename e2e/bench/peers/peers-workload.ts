/**
 * The peers benchmark's workload: the ShareGPT-shaped multi-turn chat (src/bench/workloads/
 * sharegpt-chat.ts, same seed → same conversations, same turns, same think times) where every
 * conversation starts with the same long system prompt instead of the chat workload's ≈90-token one
 * — the production shape of the routing issue (a 512- or 2,048-token prompt shared by all).
 *
 * Built by composition, so the chat workload itself is generated exactly as before: the system
 * prompt is English-like text from the ShareGPT word pool (syntheticText), seeded apart from the
 * conversations, and every prompt is tokenized with the router's own code (promptEncoder).
 */
import { CHAT_BLOCK, encodeConversations } from "../../../src/bench/workloads/conversation";
import { promptEncoder } from "../../../src/bench/workloads/prompt-encoder";
import { Rng } from "../../../src/bench/workloads/rng";
import { shareGptConversations } from "../../../src/bench/workloads/sharegpt-chat";
import { syntheticText } from "../../../src/bench/workloads/text-corpus";
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

/** Fork label of the system prompt's stream: apart from the conversations' (0, 1, 2, …). */
const SYSTEM_PROMPT_STREAM = 0x5157;

export function sharedSystemPrompt(seed: number, approxTokens: number): string {
  return syntheticText(new Rng(seed).fork(SYSTEM_PROMPT_STREAM), approxTokens);
}

export async function sharedSystemChatWorkload(p: SharedSystemChatParams): Promise<Workload> {
  const system = sharedSystemPrompt(p.seed, p.systemTokens);
  const conversations = shareGptConversations({ seed: p.seed, durationS: p.durationS, conversationsPerS: p.conversationsPerS, thinkMeanMs: p.thinkMeanMs, ...(p.maxTurns ? { maxTurns: p.maxTurns } : {}) }).map((c) => ({ ...c, system }));
  const encoder = await promptEncoder();
  const systemTokens = (await encoder.tokens(system)).length;
  const requests = await encodeConversations(conversations, encoder);
  return {
    name: `chat-system-${p.systemTokens}`,
    description:
      `ShareGPT-shaped multi-turn chat, every conversation opening with the same ${systemTokens}-token system prompt: ` +
      `${conversations.length} conversations arriving at ${p.conversationsPerS}/s for ${p.durationS} s, think time ${p.thinkMeanMs / 1000} s, seed ${p.seed}`,
    ...CHAT_BLOCK,
    requests,
  };
}
