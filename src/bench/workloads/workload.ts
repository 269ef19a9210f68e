/**
 * What a benchmark workload is: timed requests, each with its body (what a client would send),
 * its prompt token ids and block keys (computed once, with the router's own code), and what the
 * replica should generate. Policies never see `session`: it is for statistics only.
 */
import type { BlockKey } from "../../prefix/block-keys";

export type RequestPath = "/v1/chat/completions" | "/v1/completions";

export interface BenchRequest {
  readonly id: string;
  /** Conversation / group / trace this request belongs to (statistics only). */
  readonly session: string;
  /** Absolute arrival, ms from the start (open loop); null for a follow-up turn. */
  readonly arrivalMs: number | null;
  /** Closed loop: arrives `thinkMs` after request `id` completes (a user reading and typing). */
  readonly after: { readonly id: string; readonly thinkMs: number } | null;
  readonly path: RequestPath;
  /** The OpenAI request body (built on demand: token-id bodies can be large). */
  body(): string;
  /** Prompt token ids exactly as vLLM would see them (built on demand for large traces). */
  prompt(): Uint32Array;
  readonly promptTokens: number;
  /** Router block keys of the prompt's full blocks, chain order. */
  readonly keys: readonly BlockKey[];
  /** Tokens to generate (the final one is the end-of-turn token for chats). */
  readonly maxTokens: number;
  /** Ids the replica generates, when known (a chat reply, so the next turn can hit it); else synthetic. */
  outputTokens(): Uint32Array | undefined;
  /** `"stream": true` in the body: an SSE response, whose headers come before the prefill. */
  readonly stream: boolean;
}

export interface Workload {
  readonly name: string;
  /** One line: shape, parameters, seed. */
  readonly description: string;
  readonly blockSize: number;
  /** Parent of block 0 (the model's chain root), for keys the replica computes itself. */
  readonly root: Buffer;
  /** Ordered by arrival for open-loop requests; follow-ups reference earlier ids. */
  readonly requests: readonly BenchRequest[];
}

/** Share of sessions that stream their responses when a workload does not say: chat UIs do, most API clients don't. */
export const DEFAULT_STREAM_FRACTION = 0.85;

/** Whether a session streams: a stable draw from its name, independent of the workload's random stream. */
export function sessionStreams(session: string, fraction: number): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < session.length; i++) h = Math.imul(h ^ session.charCodeAt(i), 0x01000193) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  return (h ^ (h >>> 12)) >>> 0 < fraction * 0x1_0000_0000;
}

/** The body's `stream` field, present only when the response streams. */
export function streamField(stream: boolean): { stream?: true } {
  return stream ? { stream: true } : {};
}

/** A request whose data is all in memory (chat, RAG, shared prefix). */
export function inMemoryRequest(fields: Omit<BenchRequest, "body" | "prompt" | "outputTokens" | "promptTokens"> & {
  readonly bodyText: string;
  readonly ids: Uint32Array;
  readonly output?: Uint32Array;
}): BenchRequest {
  const { bodyText, ids, output, ...rest } = fields;
  return { ...rest, promptTokens: ids.length, body: () => bodyText, prompt: () => ids, outputTokens: () => output };
}
