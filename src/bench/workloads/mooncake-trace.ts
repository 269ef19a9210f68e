/**
 * Replays a Mooncake (FAST'25) trace: jsonl records {timestamp (ms), input_length, output_length,
 * hash_ids}, one hash id per `hashBlockTokens` (512) tokens, chained over the prefix (equal ids at
 * the start of two requests mean an equal prefix). Any file of that format loads.
 *
 * Each hash id becomes a deterministic block of token ids (seeded by the id, uniform over the
 * first 150,000 ids of the vocabulary); a request's prompt is its blocks concatenated and cut to
 * input_length. Prompts go as token-id completions ({"prompt": [ids…]}), so block keys come
 * straight from blockKeys (the router's own code for token-id prompts). Keys are computed once
 * per (parent, hash id) — a trace repeats blocks heavily — and prompts are rebuilt on demand.
 * `timeScale` stretches (>1) or compresses (<1) the arrival times; `limit` keeps the first n.
 */
import { readFileSync } from "node:fs";
import { blockKeys, keyBytes, type BlockKey } from "../../prefix/block-keys";
import { BENCH_BLOCK_SIZE, BENCH_MODEL, BENCH_ROOT } from "./prompt-encoder";
import { DEFAULT_STREAM_FRACTION, sessionStreams, streamField, type BenchRequest, type Workload } from "./workload";

export interface MooncakeParams {
  readonly file: string;
  readonly hashBlockTokens?: number;
  readonly timeScale?: number;
  readonly limit?: number;
  /** Share of requests that stream (default DEFAULT_STREAM_FRACTION; the trace does not say). */
  readonly streamFraction?: number;
}

interface TraceRecord {
  readonly timestamp: number;
  readonly input_length: number;
  readonly output_length: number;
  readonly hash_ids: readonly number[];
}

const VOCAB = 150_000;

/** The token ids of one trace block: xorshift32 seeded by the hash id (never 0). */
export function hashBlockTokens(hashId: number, tokens: number): Uint32Array {
  const out = new Uint32Array(tokens);
  let s = (Math.imul(hashId + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  for (let i = 0; i < tokens; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s % VOCAB;
  }
  return out;
}

export function parseMooncakeTrace(text: string): TraceRecord[] {
  return text
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((line, i) => {
      const r = JSON.parse(line) as TraceRecord;
      if (!Number.isFinite(r.timestamp) || !(r.input_length > 0) || !(r.output_length >= 0) || !Array.isArray(r.hash_ids)) {
        throw new Error(`trace line ${i + 1}: expected {timestamp, input_length, output_length, hash_ids}`);
      }
      return r;
    });
}

export function mooncakeWorkload(p: MooncakeParams): Workload {
  const blockTokens = p.hashBlockTokens ?? 512;
  if (blockTokens % BENCH_BLOCK_SIZE !== 0) throw new RangeError(`hashBlockTokens must be a multiple of ${BENCH_BLOCK_SIZE}`);
  const scale = p.timeScale ?? 1;
  let records = parseMooncakeTrace(readFileSync(p.file, "utf8"));
  if (p.limit !== undefined) records = records.slice(0, p.limit);
  const keyCache = new Map<string, BlockKey[]>();
  const keysOf = (parent: BlockKey | null, hashId: number): BlockKey[] => {
    const id = `${parent ?? "root"}:${hashId}`;
    let keys = keyCache.get(id);
    if (!keys) {
      keys = blockKeys(hashBlockTokens(hashId, blockTokens), BENCH_BLOCK_SIZE, parent === null ? BENCH_ROOT : keyBytes(parent));
      keyCache.set(id, keys);
    }
    return keys;
  };
  const t0 = records[0]?.timestamp ?? 0;
  const requests = records.map((r, n): BenchRequest => {
    const length = Math.min(r.input_length, r.hash_ids.length * blockTokens);
    const full = Math.floor(length / BENCH_BLOCK_SIZE);
    const keys: BlockKey[] = [];
    let parent: BlockKey | null = null;
    for (const h of r.hash_ids) {
      if (keys.length >= full) break;
      const blockKeysOfHash = keysOf(parent, h);
      for (let i = 0; i < blockKeysOfHash.length && keys.length < full; i++) keys.push(blockKeysOfHash[i]);
      parent = blockKeysOfHash[blockKeysOfHash.length - 1];
    }
    const prompt = (): Uint32Array => {
      const ids = new Uint32Array(length);
      r.hash_ids.forEach((h, i) => {
        const start = i * blockTokens;
        if (start < length) ids.set(hashBlockTokens(h, blockTokens).subarray(0, Math.min(blockTokens, length - start)), start);
      });
      return ids;
    };
    const id = `mc-${n}`;
    const stream = sessionStreams(id, p.streamFraction ?? DEFAULT_STREAM_FRACTION);
    return {
      id,
      session: `trace-${r.hash_ids[0] ?? n}`,
      arrivalMs: (r.timestamp - t0) * scale,
      after: null,
      path: "/v1/completions",
      body: () => JSON.stringify({ model: BENCH_MODEL, prompt: Array.from(prompt()), max_tokens: Math.max(1, r.output_length), ...streamField(stream) }),
      prompt,
      promptTokens: length,
      keys,
      maxTokens: Math.max(1, r.output_length),
      outputTokens: () => undefined,
      stream,
    };
  });
  return {
    name: "mooncake",
    description: `Mooncake trace replay: ${requests.length} requests from ${p.file.split("/").pop()}, ${blockTokens}-token hash blocks, time ×${scale}`,
    blockSize: BENCH_BLOCK_SIZE,
    root: BENCH_ROOT,
    requests,
  };
}
