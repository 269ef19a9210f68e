/**
 * One run of `prefix-router load`: closed-loop users, each sending a conversation turn by turn
 * (streaming chat completions, usage included) until the run's request count is reached, and the
 * figures the table shows — requests, errors, cache hit rate from the replicas' own
 * usage.prompt_tokens_details.cached_tokens, the follow-ups that found their conversation's history
 * cached, time to first token overall and per replica.
 */
import { countBy } from "../common/count-by";
import { seededRandom } from "../common/seeded-random";
import { ChatWorkload, type ChatTurn } from "./load-workload";

export interface LoadOptions {
  readonly url: string;
  readonly model: string;
  readonly requests: number;
  readonly concurrency: number;
  readonly turns: number;
  readonly maxTokens: number;
  readonly seed: number;
  readonly systemPrompts: number;
  readonly systemSentences: number;
  readonly documentSentences: number;
  /** A user pauses a uniform 0..thinkMs between turns (closed-loop users in lockstep would make round-robin sticky by accident). */
  readonly thinkMs: number;
  /** The replicas' KV block size: only whole blocks of a prompt are cached. */
  readonly blockSize: number;
}

export interface LoadRecord {
  /** The replica that answered (x-sim-replica, else x-prefix-router-worker), "?" when unknown. */
  readonly replica: string;
  readonly status: number;
  readonly ttftMs: number | null;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  /** The router's decision as its debug headers told it (`hit`, `miss`, `fallback/<reason>`), null without them. */
  readonly decision: string | null;
  /** A follow-up turn: the prompt tokens of its conversation's previous turn (null: a first turn, or unknown). */
  readonly previousPromptTokens: number | null;
  readonly error: string | null;
}

export interface RunSummary {
  readonly requests: number;
  readonly errors: number;
  /** Cached prompt tokens / prompt tokens, over the requests that reported usage. */
  readonly hitRate: number | null;
  /**
   * Of the follow-up turns that reported usage, the share whose replica held the conversation's
   * history: every whole block of the previous turn's prompt was cached. Round-robin finds it only
   * where a follow-up happens to land on the replica of the turn before.
   */
  readonly historyHitRate: number | null;
  /** The router's decisions by outcome (and a fallback's reason), from its debug headers; empty without a router. */
  readonly decisions: Readonly<Record<string, number>>;
  readonly ttftP50: number | null;
  readonly ttftP90: number | null;
  readonly replicas: ReadonlyArray<{ readonly id: string; readonly requests: number; readonly ttftP50: number | null; readonly hitRate: number | null }>;
}

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function hitRate(records: readonly LoadRecord[]): number | null {
  const prompt = records.reduce((n, r) => n + r.promptTokens, 0);
  return prompt > 0 ? records.reduce((n, r) => n + r.cachedTokens, 0) / prompt : null;
}

const OUTCOMES = new Set(["hit", "miss", "fallback"]);
/** A reason header is a short token of the router's own (route-result.ts); anything else is not echoed. */
const REASON = /^[a-z][a-z-]{0,40}$/;

/** The decision a response's debug headers report, as `hit`, `miss` or `fallback/<reason>`. */
export function decisionOf(headers: Headers): string | null {
  const outcome = headers.get("x-prefix-router-decision");
  if (outcome === null) return null;
  if (!OUTCOMES.has(outcome)) return "other";
  const reason = headers.get("x-prefix-router-reason");
  return outcome === "fallback" && reason !== null && REASON.test(reason) ? `fallback/${reason}` : outcome;
}

function historyHitRate(records: readonly LoadRecord[], blockSize: number): number | null {
  const followUps = records.filter((r) => r.previousPromptTokens !== null && r.promptTokens > 0);
  if (followUps.length === 0) return null;
  const held = followUps.filter((r) => r.cachedTokens >= Math.floor(r.previousPromptTokens! / blockSize) * blockSize);
  return held.length / followUps.length;
}

export class LoadRun {
  readonly records: LoadRecord[] = [];
  private started = 0;
  private readonly workload: ChatWorkload;
  private readonly think: () => number;

  constructor(
    readonly name: string,
    private readonly o: LoadOptions,
  ) {
    this.think = seededRandom(o.seed ^ 0x5eed);
    this.workload = new ChatWorkload({ seed: o.seed, systemPrompts: o.systemPrompts, systemSentences: o.systemSentences, documentSentences: o.documentSentences });
  }

  get done(): boolean {
    return this.records.length >= this.o.requests;
  }

  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.o.concurrency }, () => this.user()));
  }

  private async user(): Promise<void> {
    while (this.started < this.o.requests) {
      const history: ChatTurn[] = this.workload.startConversation();
      let previousPromptTokens: number | null = null;
      for (let turn = 0; turn < this.o.turns && this.started < this.o.requests; turn++) {
        this.started++;
        history.push(this.workload.userTurn(turn));
        const { record, reply } = await this.send(history, previousPromptTokens);
        this.records.push(record);
        previousPromptTokens = record.promptTokens > 0 ? record.promptTokens : null;
        if (reply === null) break; // a failed turn ends the conversation
        history.push({ role: "assistant", content: reply });
        if (this.o.thinkMs > 0) await new Promise((r) => setTimeout(r, this.think() * this.o.thinkMs));
      }
    }
  }

  private async send(messages: readonly ChatTurn[], previousPromptTokens: number | null): Promise<{ record: LoadRecord; reply: string | null }> {
    const sent = performance.now();
    const body = JSON.stringify({ model: this.o.model, messages, max_tokens: this.o.maxTokens, stream: true, stream_options: { include_usage: true } });
    let replica = "?";
    let status = 0;
    let decision: string | null = null;
    try {
      const res = await fetch(`${this.o.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
      status = res.status;
      replica = res.headers.get("x-sim-replica") ?? res.headers.get("x-prefix-router-worker") ?? "?";
      decision = decisionOf(res.headers);
      if (status !== 200 || !res.body) {
        await res.text().catch(() => "");
        return { record: { replica, status, ttftMs: null, promptTokens: 0, cachedTokens: 0, decision, previousPromptTokens, error: `HTTP ${status}` }, reply: null };
      }
      let ttftMs: number | null = null;
      let reply = "";
      let usage: { prompt_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } } | undefined;
      let buffer = "";
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
          ttftMs ??= performance.now() - sent;
          const data = JSON.parse(event.slice(6)) as { choices?: { delta?: { content?: string } }[]; usage?: typeof usage };
          reply += data.choices?.[0]?.delta?.content ?? "";
          if (data.usage) usage = data.usage;
        }
      }
      const promptTokens = usage?.prompt_tokens ?? 0;
      const cachedTokens = usage?.prompt_tokens_details?.cached_tokens ?? 0;
      return { record: { replica, status, ttftMs, promptTokens, cachedTokens, decision, previousPromptTokens, error: null }, reply };
    } catch (err) {
      const cause = (err as Error).cause ?? err;
      return { record: { replica, status, ttftMs: null, promptTokens: 0, cachedTokens: 0, decision, previousPromptTokens, error: String(cause) }, reply: null };
    }
  }

  summary(): RunSummary {
    const ok = this.records.filter((r) => r.error === null);
    const ttfts = (rs: readonly LoadRecord[]) => rs.map((r) => r.ttftMs).filter((t): t is number => t !== null);
    const ids = [...new Set(ok.map((r) => r.replica))].sort();
    return {
      requests: this.records.length,
      errors: this.records.length - ok.length,
      hitRate: hitRate(ok),
      historyHitRate: historyHitRate(ok, this.o.blockSize),
      decisions: countBy(this.records, (r) => r.decision),
      ttftP50: percentile(ttfts(ok), 50),
      ttftP90: percentile(ttfts(ok), 90),
      replicas: ids.map((id) => {
        const mine = ok.filter((r) => r.replica === id);
        return { id, requests: mine.length, ttftP50: percentile(ttfts(mine), 50), hitRate: hitRate(mine) };
      }),
    };
  }
}
