/**
 * The multi-turn chat workload of `prefix-router load`: conversations that start from one of a
 * few shared system prompts and grow turn by turn (each request carries the whole history, the
 * replies included), as chat clients send them. Deterministic for a seed; different seeds share
 * no text, so a second run starts with cold caches for its own prompts.
 */

import { seededRandom } from "../common/seeded-random";

const WORDS = (
  "account balance billing refund order shipping delivery address invoice payment card bank transfer " +
  "subscription plan upgrade downgrade cancel renewal discount coupon warranty repair replacement return " +
  "policy privacy security password login device network router signal battery screen update version " +
  "feature setting language region currency report export import schedule meeting calendar reminder"
).split(" ");

const TOPICS = ["billing support", "technical support", "travel planning", "code review", "legal questions", "cooking advice", "fitness coaching", "tax help"];

function sentence(random: () => number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[Math.floor(random() * WORDS.length)]);
  const s = out.join(" ");
  return `${s[0].toUpperCase()}${s.slice(1)}.`;
}

export interface ChatTurn {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

export interface WorkloadOptions {
  readonly seed: number;
  /** Distinct system prompts conversations start from. */
  readonly systemPrompts: number;
  /** Sentences per system prompt (~15 tokens each). */
  readonly systemSentences: number;
  /** Sentences of the document each conversation's first turn brings along (0: none). */
  readonly documentSentences: number;
}

/**
 * A run's conversations: a system prompt shared by several, a first turn with a document of the
 * conversation's own (a ticket, a file, a page — what makes a chat's prefix worth keeping), then
 * short questions.
 */
export class ChatWorkload {
  private readonly systems: string[];
  private readonly random: () => number;
  private next = 0;

  constructor(private readonly o: WorkloadOptions) {
    const random = seededRandom(o.seed);
    this.random = random;
    this.systems = Array.from({ length: o.systemPrompts }, (_, i) => {
      const topic = TOPICS[i % TOPICS.length];
      const rules = Array.from({ length: o.systemSentences }, (_, k) => `Rule ${k + 1} (${o.seed}/${i}): ${sentence(random, 10)}`);
      return `You are an assistant for ${topic}. Follow these rules.\n${rules.join("\n")}`;
    });
  }

  /** A new conversation: its history so far (the system prompt). */
  startConversation(): ChatTurn[] {
    const system = this.systems[this.next++ % this.systems.length];
    return [{ role: "system", content: system }];
  }

  /** The next user message of a conversation (the first one brings the document). */
  userTurn(turn: number): ChatTurn {
    const text = (n: number) => Array.from({ length: n }, () => sentence(this.random, 8 + Math.floor(this.random() * 8))).join(" ");
    const question = `Question ${turn + 1}: ${text(2 + Math.floor(this.random() * 4))}`;
    if (turn > 0 || this.o.documentSentences === 0) return { role: "user", content: question };
    return { role: "user", content: `Here is the document we are discussing:\n${text(this.o.documentSentences)}\n\n${question}` };
  }
}
