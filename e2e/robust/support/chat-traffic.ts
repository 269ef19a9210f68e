/**
 * Closed-loop chat load through the router the way Envoy sends it: each user runs conversations of
 * the `prefix-router load` chat mix (a shared system prompt, a document of the conversation's own,
 * short follow-ups; every turn carries the whole history), one request at a time. A request is an
 * ext_proc exchange with Envoy's message timeout; then, when replicas are given, the HTTP request
 * goes to the replica the router picked — or, when the router did not answer in time or at all, to
 * the next replica in round-robin order, as Envoy with failure_mode_allow does — and the exchange
 * completes with the replica's status. The replica's reply becomes the conversation's next
 * assistant turn. Without replicas (router-only runs) the exchange completes with 200 and a canned
 * reply.
 */
import type { EnvoyExtProcClient } from "../../support/envoy-ext-proc-client";
import { seededRandom } from "../../../src/common/seeded-random";
import { ChatWorkload, type ChatTurn, type WorkloadOptions } from "../../../src/cli/load-workload";

export type Outcome = "answered" | "late" | "failed";

export interface RequestRecord {
  /** ms since the traffic started, when the request was sent. */
  readonly atMs: number;
  readonly conversation: number;
  /** 0 = a conversation's first request. */
  readonly turn: number;
  /** Which client (router) decided. */
  readonly router: number;
  /** Time to the routing answer (every message of the exchange), ms. */
  readonly latencyMs: number;
  readonly outcome: Outcome;
  readonly error: string | null;
  /** x-prefix-router-decision: hit | miss | fallback; null when no answer. */
  readonly decision: string | null;
  readonly reason: string | null;
  /** Worker id the router picked (x-prefix-router-worker). */
  readonly worker: string | null;
  /** The replica that served the request (x-sim-replica), null without replicas. */
  readonly servedBy: string | null;
  /** The replica that served this conversation's previous turn. */
  readonly previousServedBy: string | null;
  readonly promptTokens: number;
  readonly cachedTokens: number;
}

export interface ChatTrafficOptions {
  /** Routers to send to; request i of the run goes to client i mod n (several routers share the load). */
  readonly clients: () => readonly EnvoyExtProcClient[];
  /** Replica addresses (host:port); empty = router-only. */
  readonly replicas: readonly string[];
  readonly concurrency: number;
  readonly seed: number;
  /** Turns per conversation (default 4). */
  readonly turns?: number;
  /** Default "qwen3". */
  readonly model?: string;
  /** Envoy's ext_proc message_timeout (default: the shipped configs' 250 ms). */
  readonly messageTimeoutMs?: number;
  readonly maxTokens?: number;
  readonly workload?: Partial<Omit<WorkloadOptions, "seed">>;
  /** Which client decides a request (default: request i of the run → client i mod n). */
  readonly routerFor?: (conversation: number, turn: number, index: number, clients: number) => number;
  /** Stop after this many requests (default: until stop()). */
  readonly requests?: number;
  readonly onRecord?: (record: RequestRecord) => void;
}

/** envoy/envoy.yaml, envoy-original-dst.yaml and the Istio filters: message_timeout 0.25s. */
export const SHIPPED_MESSAGE_TIMEOUT_MS = 250;

const CANNED_REPLY = "Thank you, I have looked at the document and here is what I found.";

export class ChatTraffic {
  private readonly workload: ChatWorkload;
  private readonly t0 = performance.now();
  private running = false;
  private users: Promise<void>[] = [];
  private sent = 0;
  private conversations = 0;
  private failOpen = 0;
  private readonly random: () => number;
  /** Requests currently being exchanged with a router. */
  inFlight = 0;

  constructor(private readonly o: ChatTrafficOptions) {
    this.workload = new ChatWorkload({ seed: o.seed, systemPrompts: 4, systemSentences: 30, documentSentences: 40, ...o.workload });
    this.random = seededRandom(o.seed ^ 0x7a11);
  }

  get started(): number {
    return this.sent;
  }

  /** ms since the traffic started. */
  now(): number {
    return performance.now() - this.t0;
  }

  start(): void {
    this.running = true;
    this.users = Array.from({ length: this.o.concurrency }, () => this.user());
  }

  /** Stops starting requests; resolves when every user's last request has finished. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.users);
  }

  /** Resolves when the request budget is spent and every user finished. */
  async done(): Promise<void> {
    await Promise.all(this.users);
  }

  private more(): boolean {
    return this.running && (this.o.requests === undefined || this.sent < this.o.requests);
  }

  private async user(): Promise<void> {
    while (this.more()) {
      const conversation = this.conversations++;
      const history: ChatTurn[] = this.workload.startConversation();
      let previous: string | null = null;
      for (let turn = 0; turn < (this.o.turns ?? 4) && this.more(); turn++) {
        history.push(this.workload.userTurn(turn));
        const { record, reply } = await this.send(conversation, turn, history, previous);
        this.o.onRecord?.(record);
        if (reply === null) break;
        previous = record.servedBy;
        history.push({ role: "assistant", content: reply });
      }
    }
  }

  private async send(conversation: number, turn: number, messages: readonly ChatTurn[], previous: string | null): Promise<{ record: RequestRecord; reply: string | null }> {
    const index = this.sent++;
    const clients = this.o.clients();
    const router = this.o.routerFor ? this.o.routerFor(conversation, turn, index, clients.length) : index % clients.length;
    const body = JSON.stringify({ model: this.o.model ?? "qwen3", messages, max_tokens: this.o.maxTokens ?? 8 });
    const atMs = this.now();
    const base = { atMs, conversation, turn, router, previousServedBy: previous };
    let exchange: Awaited<ReturnType<EnvoyExtProcClient["process"]>> | null = null;
    let outcome: Outcome = "answered";
    let error: string | null = null;
    this.inFlight++;
    try {
      exchange = await clients[router].process({ path: "/v1/chat/completions", body, messageTimeoutMs: this.o.messageTimeoutMs ?? SHIPPED_MESSAGE_TIMEOUT_MS });
    } catch (err) {
      error = (err as Error).message;
      outcome = /within \d+ ms/.test(error) ? "late" : "failed";
    } finally {
      this.inFlight--;
    }
    const latencyMs = this.now() - atMs;
    const h = exchange?.upstreamHeaders;
    const answered = {
      decision: h?.get("x-prefix-router-decision") ?? null,
      reason: h?.get("x-prefix-router-reason") ?? null,
      worker: h?.get("x-prefix-router-worker") ?? null,
    };
    if (this.o.replicas.length === 0) {
      await exchange?.complete(200).catch(() => undefined);
      return { record: { ...base, ...answered, latencyMs, outcome, error, servedBy: null, promptTokens: 0, cachedTokens: 0 }, reply: CANNED_REPLY };
    }
    // Envoy routes on the pick, or (fail open) by its own load balancer.
    const picked = h?.get("x-gateway-destination-endpoint")?.split(",")[0];
    const address = picked ?? this.o.replicas[this.failOpen++ % this.o.replicas.length];
    let reply: string | null = null;
    let servedBy: string | null = null;
    let promptTokens = 0;
    let cachedTokens = 0;
    let status = 502;
    try {
      const res = await fetch(`http://${address}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(30_000) });
      status = res.status;
      servedBy = res.headers.get("x-sim-replica");
      const json = (await res.json()) as { choices?: { message?: { content?: string } }[]; usage?: { prompt_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } } };
      if (res.ok) {
        reply = json.choices?.[0]?.message?.content ?? "";
        promptTokens = json.usage?.prompt_tokens ?? 0;
        cachedTokens = json.usage?.prompt_tokens_details?.cached_tokens ?? 0;
      } else error ??= `replica ${address}: HTTP ${status}`;
    } catch (err) {
      error ??= `replica ${address}: ${(err as Error).message}`;
    }
    await exchange?.complete(status).catch(() => undefined);
    // A think pause of 0–20 ms keeps users from moving in lockstep.
    await new Promise((r) => setTimeout(r, this.random() * 20));
    return { record: { ...base, ...answered, latencyMs, outcome, error, servedBy, promptTokens, cachedTokens }, reply };
  }
}
