/**
 * Shared-prefix groups shaped like SGLang's generated-shared-prefix benchmark: `groups` (64) ×
 * `promptsPerGroup` (16) chat requests; each group has its own system prompt of ≈`systemTokens`
 * (2,048) tokens, each request its own question of ≈`questionTokens` (128) tokens, and every
 * request generates `outputTokens` (256). SGLang fills these with random tokens; we use English-like
 * text drawn from ShareGPT words, rendered through the chat template (lengths are within a few
 * percent of the targets). All requests are shuffled and sent as a Poisson process (`requestsPerS`).
 */
import { BENCH_MODEL, promptEncoder } from "./prompt-encoder";
import { Rng } from "./rng";
import { syntheticText } from "./text-corpus";
import { CHAT_BLOCK } from "./conversation";
import { DEFAULT_STREAM_FRACTION, inMemoryRequest, sessionStreams, streamField, type BenchRequest, type Workload } from "./workload";

export interface SharedPrefixParams {
  readonly seed: number;
  readonly groups?: number;
  readonly promptsPerGroup?: number;
  readonly systemTokens?: number;
  readonly questionTokens?: number;
  readonly outputTokens?: number;
  readonly requestsPerS: number;
  /** Share of requests that stream (default DEFAULT_STREAM_FRACTION). */
  readonly streamFraction?: number;
}

export async function sharedPrefixWorkload(p: SharedPrefixParams): Promise<Workload> {
  const groups = p.groups ?? 64;
  const perGroup = p.promptsPerGroup ?? 16;
  const output = p.outputTokens ?? 256;
  const rng = new Rng(p.seed);
  const systems = Array.from({ length: groups }, (_, g) => syntheticText(rng.fork(g), p.systemTokens ?? 2048));
  const specs: { group: number; index: number; question: string }[] = [];
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < perGroup; i++) specs.push({ group: g, index: i, question: syntheticText(rng.fork(100_000 + g * perGroup + i), p.questionTokens ?? 128) });
  }
  rng.shuffle(specs);
  const encoder = await promptEncoder();
  const path = "/v1/chat/completions" as const;
  let clock = 0;
  const requests: BenchRequest[] = [];
  for (const s of specs) {
    clock += rng.exponential(1000 / p.requestsPerS);
    const id = `g${s.group}/q${s.index}`;
    const stream = sessionStreams(id, p.streamFraction ?? DEFAULT_STREAM_FRACTION);
    const bodyText = JSON.stringify({
      model: BENCH_MODEL,
      messages: [
        { role: "system", content: systems[s.group] },
        { role: "user", content: s.question },
      ],
      max_tokens: output,
      ...streamField(stream),
    });
    const { ids, keys } = await encoder.encode(path, bodyText);
    requests.push(inMemoryRequest({ id, session: `group-${s.group}`, arrivalMs: clock, after: null, path, bodyText, ids, keys, maxTokens: output, stream }));
  }
  return {
    name: "shared-prefix",
    description: `generated shared prefix: ${groups} groups × ${perGroup} prompts, ≈${p.systemTokens ?? 2048}-token system prompts at ${p.requestsPerS} req/s, seed ${p.seed}`,
    ...CHAT_BLOCK,
    requests,
  };
}
