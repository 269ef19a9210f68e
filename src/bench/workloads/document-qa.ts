/**
 * Document questions: a user pastes a long document (≈`minDocTokens`–`maxDocTokens`, 16k–32k
 * tokens, uniform; real MTRAG passages drawn at random) and asks 1–4 questions about it (geometric,
 * mean `meanQuestions` 2); the document stays in the history, so follow-ups share its prefix.
 * Replies ≈150 tokens (log-normal, σ 0.5); think time exponential, mean `thinkMeanMs` (20 s).
 * Sessions arrive as a Poisson process (`sessionsPerS`) for `durationS`. Mixed with short chats
 * (build-workload.ts "mix") this is the mixed-sizes workload: a 32k-token prefill is ~1.5 s of
 * GPU time that a request-count load signal weighs like a one-line follow-up.
 */
import { encodeConversations, CHAT_BLOCK, type ScriptedConversation, type ScriptedTurn } from "./conversation";
import { promptEncoder } from "./prompt-encoder";
import { Rng } from "./rng";
import { cutAtWord, passageText, sharegptPrompts, syntheticText } from "./text-corpus";
import { DEFAULT_STREAM_FRACTION, sessionStreams, type Workload } from "./workload";

export interface DocumentQaParams {
  readonly seed: number;
  readonly durationS: number;
  readonly sessionsPerS: number;
  readonly minDocTokens?: number;
  readonly maxDocTokens?: number;
  readonly meanQuestions?: number;
  readonly thinkMeanMs?: number;
  readonly streamFraction?: number;
}

export function documentConversations(p: DocumentQaParams): ScriptedConversation[] {
  const rng = new Rng(p.seed);
  const [lo, hi] = [p.minDocTokens ?? 16_384, p.maxDocTokens ?? 32_768];
  const prompts = sharegptPrompts();
  const out: ScriptedConversation[] = [];
  let clock = 0;
  for (let s = 0; ; s++) {
    clock += rng.exponential(1000 / p.sessionsPerS);
    if (clock >= p.durationS * 1000) break;
    const r = rng.fork(s);
    const doc = passageText(Math.round(lo + (hi - lo) * r.next()), r);
    const questions = Math.min(4, r.geometric(1 / (p.meanQuestions ?? 2)));
    const turns: ScriptedTurn[] = [];
    for (let q = 0; q < questions; q++) {
      const question = cutAtWord(r.pick(prompts), Math.max(40, Math.round(r.logNormal(160, 0.8))));
      const message = q === 0 ? `Here is a document:\n\n${doc}\n\nQuestion: ${question}` : question;
      turns.push({ user: message, userInHistory: message, reply: syntheticText(r, Math.round(r.logNormal(150, 0.5))), thinkMs: q === 0 ? 0 : r.exponential(p.thinkMeanMs ?? 20_000) });
    }
    const session = `doc-${s}`;
    out.push({ session, startMs: clock, system: null, turns, stream: sessionStreams(session, p.streamFraction ?? DEFAULT_STREAM_FRACTION) });
  }
  return out;
}

export async function documentQaWorkload(p: DocumentQaParams): Promise<Workload> {
  const sessions = documentConversations(p);
  const requests = await encodeConversations(sessions, await promptEncoder());
  return {
    name: "document-qa",
    description: `document questions: ${sessions.length} sessions at ${p.sessionsPerS}/s, ${p.minDocTokens ?? 16_384}–${p.maxDocTokens ?? 32_768}-token documents, seed ${p.seed}`,
    ...CHAT_BLOCK,
    requests,
  };
}
