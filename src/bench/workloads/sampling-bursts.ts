/**
 * n-sampling / best-of-N bursts: `copies` (8) requests with one identical prompt arriving within
 * `spreadMs` (10 ms) of each other, as a client fanning out samples sends them. Each burst's prompt
 * is a short instruction, ≈1k–8k tokens of real MTRAG passages (log-uniform) and a real ShareGPT
 * question; every copy generates its own `outputTokens` (256) — different samples, different
 * generated blocks. Bursts arrive as a Poisson process (`burstsPerS`) for `durationS`.
 * Routing all copies to the replica that holds (or is computing) the prompt makes them queue behind
 * one another; the estimate decides when recomputing elsewhere is faster.
 */
import { BENCH_MODEL, promptEncoder } from "./prompt-encoder";
import { Rng } from "./rng";
import { CHAT_BLOCK } from "./conversation";
import { passageText, sharegptPrompts } from "./text-corpus";
import { DEFAULT_STREAM_FRACTION, inMemoryRequest, sessionStreams, streamField, type BenchRequest, type Workload } from "./workload";

export interface SamplingBurstParams {
  readonly seed: number;
  readonly durationS: number;
  readonly burstsPerS: number;
  readonly copies?: number;
  readonly spreadMs?: number;
  readonly minContextTokens?: number;
  readonly maxContextTokens?: number;
  readonly outputTokens?: number;
  readonly streamFraction?: number;
}

export async function samplingBurstsWorkload(p: SamplingBurstParams): Promise<Workload> {
  const rng = new Rng(p.seed);
  const copies = p.copies ?? 8;
  const spread = p.spreadMs ?? 10;
  const [lo, hi] = [p.minContextTokens ?? 1024, p.maxContextTokens ?? 8192];
  const output = p.outputTokens ?? 256;
  const encoder = await promptEncoder();
  const path = "/v1/chat/completions" as const;
  const requests: BenchRequest[] = [];
  let clock = 0;
  for (let b = 0; ; b++) {
    clock += rng.exponential(1000 / p.burstsPerS);
    if (clock >= p.durationS * 1000) break;
    const r = rng.fork(b);
    const context = passageText(Math.round(lo * Math.pow(hi / lo, r.next())), r);
    const session = `burst-${b}`;
    const stream = sessionStreams(session, p.streamFraction ?? DEFAULT_STREAM_FRACTION);
    const messages = [
      { role: "system", content: "Answer the question using the context. Give one candidate answer; several will be sampled and the best kept." },
      { role: "user", content: `Context:\n${context}\n\nQuestion: ${r.pick(sharegptPrompts())}` },
    ];
    const bodyText = JSON.stringify({ model: BENCH_MODEL, messages, max_tokens: output, ...streamField(stream) });
    const { ids, keys } = await encoder.encode(path, bodyText);
    const offsets = Array.from({ length: copies }, () => r.next() * spread).sort((x, y) => x - y);
    offsets.forEach((offset, c) => {
      requests.push(inMemoryRequest({ id: `${session}/s${c}`, session, arrivalMs: clock + offset, after: null, path, bodyText, ids, keys, maxTokens: output, stream }));
    });
  }
  requests.sort((a, b) => a.arrivalMs! - b.arrivalMs!);
  return {
    name: "bursts",
    description: `n-sampling bursts: ${requests.length / copies} bursts of ${copies} identical prompts within ${spread} ms (${lo}–${hi}-token contexts) at ${p.burstsPerS}/s, seed ${p.seed}`,
    ...CHAT_BLOCK,
    requests,
  };
}
