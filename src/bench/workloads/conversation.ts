/**
 * Turns scripted multi-turn conversations into BenchRequests, shared by the chat and RAG workloads.
 * Turn t's prompt is the chat so far (system, earlier questions and replies, question t); its reply
 * becomes history for turn t+1. The replica "generates" exactly the reply's token ids followed by
 * the end-of-turn token, taken from turn t+1's prompt where that prompt extends turn t's token by
 * token — so the blocks a replica caches while generating are the blocks the next turn asks for,
 * as with a real chat model.
 */
import { BENCH_BLOCK_SIZE, BENCH_MODEL, BENCH_ROOT, type PromptEncoder } from "./prompt-encoder";
import { inMemoryRequest, streamField, type BenchRequest } from "./workload";

export interface ScriptedTurn {
  /** The user message as sent on this turn (e.g. with retrieved passages). */
  readonly user: string;
  /** The same message as it stays in later turns' history (e.g. without the passages). */
  readonly userInHistory: string;
  /** "tool": the message is a tool's result, answering the previous reply's tool call (default "user"). */
  readonly role?: "user" | "tool";
  /** Text of the reply (for a tool call, its JSON: it sizes the output when the next prompt cannot). */
  readonly reply: string;
  /** The reply calls a tool instead of answering in text. */
  readonly replyToolCall?: { readonly name: string; readonly arguments: Readonly<Record<string, unknown>> };
  /** Think time before this turn, after the previous reply completed (ignored on turn 1). */
  readonly thinkMs: number;
}

export interface ScriptedConversation {
  readonly session: string;
  readonly startMs: number;
  readonly system: string | null;
  /** OpenAI `tools` sent with every turn (the template renders them into the system part). */
  readonly tools?: readonly Record<string, unknown>[];
  readonly turns: readonly ScriptedTurn[];
  /** The client streams every turn's response (a chat UI). */
  readonly stream: boolean;
}

type Message = { role: "system" | "user" | "assistant" | "tool"; content: string; tool_call_id?: string; tool_calls?: object[] };

const callId = (turn: number) => `call_${turn}`;

function inputMessage(turns: readonly ScriptedTurn[], t: number, content: string): Message {
  return turns[t].role === "tool" ? { role: "tool", content, tool_call_id: callId(t - 1) } : { role: "user", content };
}

function replyMessage(turn: ScriptedTurn, t: number): Message {
  const call = turn.replyToolCall;
  if (!call) return { role: "assistant", content: turn.reply };
  return { role: "assistant", content: "", tool_calls: [{ id: callId(t), type: "function", function: { name: call.name, arguments: JSON.stringify(call.arguments) } }] };
}

function messagesFor(c: ScriptedConversation, turn: number): Message[] {
  const out: Message[] = c.system !== null ? [{ role: "system", content: c.system }] : [];
  for (let t = 0; t < turn; t++) out.push(inputMessage(c.turns, t, c.turns[t].userInHistory), replyMessage(c.turns[t], t));
  out.push(inputMessage(c.turns, turn, c.turns[turn].user));
  return out;
}

function bodyOf(c: ScriptedConversation, messages: readonly Message[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: BENCH_MODEL, messages, ...(c.tools ? { tools: c.tools } : {}), ...extra });
}

function startsWith(ids: Uint32Array, prefix: Uint32Array): boolean {
  if (prefix.length > ids.length) return false;
  for (let i = 0; i < prefix.length; i++) if (ids[i] !== prefix[i]) return false;
  return true;
}

export async function conversationRequests(c: ScriptedConversation, encoder: PromptEncoder, endOfTurn: number): Promise<BenchRequest[]> {
  const path = "/v1/chat/completions" as const;
  const encoded = [];
  for (let t = 0; t < c.turns.length; t++) {
    const messages = messagesFor(c, t);
    encoded.push({ messages, ...(await encoder.encode(path, bodyOf(c, messages))) });
  }
  const out: BenchRequest[] = [];
  for (let t = 0; t < c.turns.length; t++) {
    const { messages, ids, keys } = encoded[t];
    const next = encoded[t + 1]?.ids;
    let output: Uint32Array;
    const end = next && startsWith(next, ids) ? next.indexOf(endOfTurn, ids.length) : -1;
    if (next && end >= 0) {
      output = next.slice(ids.length, end + 1);
    } else {
      const reply = await encoder.tokens(c.turns[t].reply);
      output = new Uint32Array(reply.length + 1);
      output.set(reply);
      output[reply.length] = endOfTurn;
    }
    const maxTokens = output.length;
    const bodyText = bodyOf(c, messages, { max_tokens: maxTokens, ...streamField(c.stream) });
    out.push(
      inMemoryRequest({
        id: `${c.session}/t${t + 1}`,
        session: c.session,
        arrivalMs: t === 0 ? c.startMs : null,
        after: t === 0 ? null : { id: `${c.session}/t${t}`, thinkMs: c.turns[t].thinkMs },
        path,
        bodyText,
        ids,
        keys,
        maxTokens,
        output,
        stream: c.stream,
      }),
    );
  }
  return out;
}

/** Encodes many conversations with bounded concurrency (the Rust tokenizer runs off the event loop). */
export async function encodeConversations(conversations: readonly ScriptedConversation[], encoder: PromptEncoder, concurrency = 8): Promise<BenchRequest[]> {
  const [endOfTurn] = await encoder.tokens("<|im_end|>");
  const results: BenchRequest[][] = new Array(conversations.length);
  let next = 0;
  const worker = async () => {
    while (next < conversations.length) {
      const i = next++;
      results[i] = await conversationRequests(conversations[i], encoder, endOfTurn);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, conversations.length) }, worker));
  return results.flat().sort(byArrival);
}

/** Open-loop requests by arrival time first, then follow-ups in creation order (stable). */
function byArrival(a: BenchRequest, b: BenchRequest): number {
  return (a.arrivalMs ?? Infinity) - (b.arrivalMs ?? Infinity);
}

export const CHAT_BLOCK = { blockSize: BENCH_BLOCK_SIZE, root: BENCH_ROOT } as const;
