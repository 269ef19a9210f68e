/**
 * Multi-turn RAG shaped like MTRAG (110 conversations, 7.7 turns on average, top-5 retrieved
 * passages per turn), replayed from the MTRAG-UN reference sample (198 conversations):
 *
 * - Each task's conversation is replayed turn by turn: its real user questions and real agent
 *   answers (the final answer is the task's reference target) become the growing history.
 * - Every turn sends a shared RAG system prompt, the history, and a last user message holding
 *   `passagesPerTurn` (5) retrieved passages followed by the question. The passages stay out of
 *   later turns' history (a RAG app re-retrieves each turn), as in MTRAG's generation setup.
 * - The final turn's passages are the task's own reference contexts, topped up to 5; earlier
 *   turns draw 5 passages from the same document collection (seeded), all real MTRAG text.
 * - Conversations arrive as a Poisson process (`conversationsPerS`); think time between turns
 *   is exponential with mean `thinkMeanMs` (15 s). `copies` > 1 replays the sample again as new
 *   users (the copy number is written into the first question, so copies share only the system
 *   prompt).
 */
import { encodeConversations, CHAT_BLOCK, type ScriptedConversation } from "./conversation";
import { promptEncoder } from "./prompt-encoder";
import { Rng } from "./rng";
import { mtragTasks } from "./text-corpus";
import { DEFAULT_STREAM_FRACTION, sessionStreams, type Workload } from "./workload";

export interface MtragRagParams {
  readonly seed: number;
  readonly conversationsPerS: number;
  readonly copies?: number;
  /** Use only the first n tasks of the sample (all 198 by default). */
  readonly tasks?: number;
  readonly passagesPerTurn?: number;
  readonly thinkMeanMs?: number;
  /** Share of conversations that stream (default DEFAULT_STREAM_FRACTION). */
  readonly streamFraction?: number;
}

export const RAG_SYSTEM_PROMPT =
  "You are a customer-support and research assistant. You are given a conversation and, with the latest " +
  "user question, a set of retrieved passages. Answer the latest question using only the information in " +
  "the passages and the conversation. If the passages do not contain the answer, say that you do not know " +
  "and suggest where the user could look. Be concise, cite passages as [1], [2], … when you use them, and " +
  "never invent facts, numbers, names or links that the passages do not support.";

function withPassages(passages: readonly string[], question: string): string {
  return `Passages:\n${passages.map((p, i) => `[${i + 1}] ${p}`).join("\n\n")}\n\nQuestion: ${question}`;
}

export function mtragConversations(p: MtragRagParams): ScriptedConversation[] {
  const rng = new Rng(p.seed);
  const all = mtragTasks();
  const tasks = all.slice(0, p.tasks ?? all.length);
  const k = p.passagesPerTurn ?? 5;
  const thinkMean = p.thinkMeanMs ?? 15_000;
  const pool = new Map<string, string[]>();
  for (const t of all) for (const c of t.contexts) (pool.get(t.collection) ?? pool.set(t.collection, []).get(t.collection)!).push(c);
  const order: { task: number; copy: number }[] = [];
  for (let copy = 0; copy < (p.copies ?? 1); copy++) for (let task = 0; task < tasks.length; task++) order.push({ task, copy });
  rng.shuffle(order);

  let clock = 0;
  return order.map(({ task, copy }, n) => {
    clock += rng.exponential(1000 / p.conversationsPerS);
    const r = rng.fork(n);
    const t = tasks[task];
    const draw = (own: readonly string[]) => {
      const picked = own.slice(0, k);
      const candidates = pool.get(t.collection) ?? [];
      while (picked.length < k && candidates.length > picked.length) {
        const c = r.pick(candidates);
        if (!picked.includes(c)) picked.push(c);
      }
      return picked;
    };
    const questions = t.input.filter((m) => m.speaker === "user").map((m) => m.text);
    const answers = t.input.filter((m) => m.speaker === "agent").map((m) => m.text);
    answers.push(t.answer);
    const turns = questions.map((q, i) => {
      const question = i === 0 && copy > 0 ? `(user ${copy}) ${q}` : q;
      const last = i === questions.length - 1;
      return {
        user: withPassages(draw(last ? t.contexts : []), question),
        userInHistory: question,
        reply: answers[i] ?? "",
        thinkMs: i === 0 ? 0 : r.exponential(thinkMean),
      };
    });
    const session = `rag-${task}${copy ? `-u${copy}` : ""}`;
    return { session, startMs: clock, system: RAG_SYSTEM_PROMPT, turns, stream: sessionStreams(session, p.streamFraction ?? DEFAULT_STREAM_FRACTION) };
  });
}

export async function mtragRagWorkload(p: MtragRagParams): Promise<Workload> {
  const convs = mtragConversations(p);
  const requests = await encodeConversations(convs, await promptEncoder());
  return {
    name: "rag",
    description: `MTRAG-shaped multi-turn RAG: ${convs.length} conversations at ${p.conversationsPerS}/s, top-${p.passagesPerTurn ?? 5} passages, seed ${p.seed}`,
    ...CHAT_BLOCK,
    requests,
  };
}
