/**
 * Agent sessions: a tool-using assistant working through a task. Every session sends the same
 * ≈`toolSchemaTokens` (4,096) of tool definitions (OpenAI `tools`, rendered by the chat template
 * into the system part — the prefix all sessions share), then a real ShareGPT prompt as the task.
 * Each step the model calls a tool (a short JSON call) and the tool's result — real MTRAG passages
 * of log-normal length (median `resultMedianTokens` 400, σ 0.6) — comes back as a `tool` message,
 * so the history grows by a call and a result per step; the last step answers in text (≈200 tokens).
 *
 * - Sessions arrive as a Poisson process (`sessionsPerS`) for `durationS`.
 * - Steps per session: geometric with mean `meanSteps` (6), at most `maxSteps` (20).
 * - Between a reply and the next request: the tool's latency, exponential with mean
 *   `toolLatencyMeanMs` (1,500 ms) — agents come back fast, unlike people.
 */
import { encodeConversations, CHAT_BLOCK, type ScriptedConversation, type ScriptedTurn } from "./conversation";
import { promptEncoder } from "./prompt-encoder";
import { Rng } from "./rng";
import { cutAtWord, passageText, sharegptPrompts, syntheticText } from "./text-corpus";
import { DEFAULT_STREAM_FRACTION, sessionStreams, type Workload } from "./workload";

export interface AgentSessionParams {
  readonly seed: number;
  readonly durationS: number;
  readonly sessionsPerS: number;
  readonly toolSchemaTokens?: number;
  readonly meanSteps?: number;
  readonly maxSteps?: number;
  readonly toolLatencyMeanMs?: number;
  readonly resultMedianTokens?: number;
  readonly streamFraction?: number;
}

const TOOL_VERBS = ["search", "lookup", "fetch", "list", "summarize", "translate", "compute", "query", "inspect", "compare", "extract", "validate"];
const TOOL_NOUNS = ["documents", "tickets", "orders", "accounts", "invoices", "products"];

/** The tool definitions every session shares: 24 functions whose descriptions are real text. */
export function agentTools(approxTokens: number): Record<string, unknown>[] {
  const rng = new Rng(0x7001);
  const count = 24;
  const perTool = Math.max(8, Math.round(approxTokens / count) - 90); // ≈90 tokens of JSON around each description
  return Array.from({ length: count }, (_, i) => ({
    type: "function",
    function: {
      name: `${TOOL_VERBS[i % TOOL_VERBS.length]}_${TOOL_NOUNS[i % TOOL_NOUNS.length]}`,
      description: passageText(perTool, rng.fork(i)),
      parameters: {
        type: "object",
        properties: {
          query: { type: "string", description: "What to look for, in the user's words." },
          limit: { type: "integer", description: "Most results to return.", minimum: 1, maximum: 50 },
        },
        required: ["query"],
      },
    },
  }));
}

export function agentConversations(p: AgentSessionParams): ScriptedConversation[] {
  const rng = new Rng(p.seed);
  const tools = agentTools(p.toolSchemaTokens ?? 4096);
  const names = tools.map((t) => (t.function as { name: string }).name);
  const prompts = sharegptPrompts();
  const meanSteps = p.meanSteps ?? 6;
  const maxSteps = p.maxSteps ?? 20;
  const latency = p.toolLatencyMeanMs ?? 1_500;
  const resultMedian = p.resultMedianTokens ?? 400;
  const out: ScriptedConversation[] = [];
  let clock = 0;
  for (let s = 0; ; s++) {
    clock += rng.exponential(1000 / p.sessionsPerS);
    if (clock >= p.durationS * 1000) break;
    const r = rng.fork(s);
    const steps = Math.min(maxSteps, r.geometric(1 / meanSteps));
    const turns: ScriptedTurn[] = [];
    for (let t = 0; t < steps; t++) {
      const input = t === 0 ? r.pick(prompts) : passageText(Math.max(40, Math.round(r.logNormal(resultMedian, 0.6))), r);
      const last = t === steps - 1;
      const call = last ? undefined : { name: r.pick(names), arguments: { query: cutAtWord(r.pick(prompts), 60), limit: 1 + r.int(10) } };
      turns.push({
        user: input,
        userInHistory: input,
        role: t === 0 ? "user" : "tool",
        reply: call ? JSON.stringify(call) : syntheticText(r, 200),
        ...(call ? { replyToolCall: call } : {}),
        thinkMs: t === 0 ? 0 : r.exponential(latency),
      });
    }
    const session = `agent-${s}`;
    out.push({ session, startMs: clock, system: null, tools, turns, stream: sessionStreams(session, p.streamFraction ?? DEFAULT_STREAM_FRACTION) });
  }
  return out;
}

export async function agentSessionsWorkload(p: AgentSessionParams): Promise<Workload> {
  const sessions = agentConversations(p);
  const requests = await encodeConversations(sessions, await promptEncoder());
  return {
    name: "agent",
    description: `agent sessions: ${sessions.length} sessions at ${p.sessionsPerS}/s for ${p.durationS} s, ≈${p.toolSchemaTokens ?? 4096}-token tool schema shared by all, ${p.meanSteps ?? 6} tool steps on average, seed ${p.seed}`,
    ...CHAT_BLOCK,
    requests,
  };
}
