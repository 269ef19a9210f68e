/**
 * Real text for workloads, read once from data/workloads/: ShareGPT V3 first-turn prompts and
 * MTRAG-UN tasks (conversation, retrieved passages, reference answer). Synthetic replies draw
 * words from the ShareGPT text, so they tokenize like real English (≈1.3 tokens per word).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Rng } from "./rng";

export const DATA_DIR = join(__dirname, "..", "..", "..", "data", "workloads");

let sharegpt: string[] | undefined;
let words: string[] | undefined;

/** The 500 real ShareGPT first-turn prompts. */
export function sharegptPrompts(): readonly string[] {
  sharegpt ??= (JSON.parse(readFileSync(join(DATA_DIR, "sharegpt_v3_firstturn_500.json"), "utf8")) as { conversations: { value: string }[] }[]).map(
    (r) => r.conversations[0].value,
  );
  return sharegpt;
}

function corpusWords(): string[] {
  words ??= sharegptPrompts()
    .join(" ")
    .split(/\s+/)
    .filter((w) => w.length > 0 && w.length < 20 && /^[\w.,;:'"()!?-]+$/.test(w));
  return words;
}

/**
 * About `approxTokens` tokens of English-like text: words drawn (by frequency) from real prompts,
 * in sentences and paragraphs. Callers that need the exact count tokenize the result.
 */
export function syntheticText(rng: Rng, approxTokens: number): string {
  const pool = corpusWords();
  const wordCount = Math.max(1, Math.round(approxTokens * 0.76));
  const out: string[] = [];
  let sentence = 0;
  for (let i = 0; i < wordCount; i++) {
    let w = rng.pick(pool);
    if (sentence === 0) w = w.charAt(0).toUpperCase() + w.slice(1);
    sentence++;
    if (sentence > 6 && rng.next() < 0.12) {
      w += rng.next() < 0.1 ? ".\n\n" : ".";
      sentence = 0;
    }
    out.push(w);
  }
  return out.join(" ").replace(/\n\n /g, "\n\n") + ".";
}

/** The first ≈`chars` characters of `text`, cut at a word boundary. */
export function cutAtWord(text: string, chars: number): string {
  if (text.length <= chars) return text;
  const cut = text.lastIndexOf(" ", chars);
  return text.slice(0, cut > chars / 2 ? cut : chars);
}

export interface MtragTurn {
  readonly speaker: "user" | "agent";
  readonly text: string;
}

export interface MtragTask {
  readonly conversationId: string;
  readonly collection: string;
  /** History and the final user question, alternating user/agent. */
  readonly input: readonly MtragTurn[];
  /** The reference passages of the final question (0–7 in this sample). */
  readonly contexts: readonly string[];
  /** Reference answer of the final question. */
  readonly answer: string;
}

let mtrag: MtragTask[] | undefined;

/** The 198 MTRAG-UN reference tasks (one per conversation in this sample). */
export function mtragTasks(): readonly MtragTask[] {
  mtrag ??= readFileSync(join(DATA_DIR, "mtrag_un_reference_sample.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((line) => {
      const r = JSON.parse(line) as {
        conversation_id: string;
        Collection: string;
        input: { speaker: string; text: string }[];
        contexts: { text: string }[];
        targets: { text: string }[];
      };
      return {
        conversationId: r.conversation_id,
        collection: r.Collection,
        input: r.input.map((t) => ({ speaker: t.speaker === "user" ? "user" : "agent", text: t.text }) as MtragTurn),
        contexts: r.contexts.map((c) => c.text.trim()),
        answer: r.targets[0]?.text ?? "",
      };
    });
  return mtrag;
}

/**
 * About `approxTokens` tokens of real text: MTRAG passages of one collection in file order (or, with
 * `rng`, drawn from all collections), joined by blank lines and cut at a word (≈4 characters per token).
 */
export function passageText(approxTokens: number, rng?: Rng): string {
  const tasks = mtragTasks();
  const passages = tasks.flatMap((t) => t.contexts).filter((p) => p.length > 200);
  const chars = Math.round(approxTokens * 4.1);
  const out: string[] = [];
  let length = 0;
  for (let i = 0; length < chars; i++) {
    const p = rng ? rng.pick(passages) : passages[i % passages.length];
    out.push(p);
    length += p.length + 2;
  }
  return cutAtWord(out.join("\n\n"), chars);
}

/** A long system prompt made of real text: instructions followed by reference material (≈`approxTokens`). */
export function referenceSystemPrompt(approxTokens: number): string {
  const head =
    "You are the support assistant of a company. Answer the user's questions using the reference material below " +
    "when it is relevant; say so when it does not cover the question. Be concise and friendly.\n\nReference material:\n\n";
  return head + passageText(Math.max(16, approxTokens - 45));
}
