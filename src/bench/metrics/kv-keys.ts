/**
 * The keys of a request's whole KV once it finishes: its prompt's full blocks, then the blocks its
 * generated tokens fill (KV length P + maxTokens − 1: the last sampled token is never fed back).
 * With known output ids the generated keys are the real chain (a chat reply the next turn reuses);
 * otherwise the replica generates per-request ids, whose blocks no other request can share, so a
 * unique placeholder per block stands in for them.
 */
import { blockKeys, keyBytes, type BlockKey } from "../../prefix/block-keys";
import type { BenchRequest } from "../workloads/workload";

export function kvKeys(r: BenchRequest, blockSize: number, root: Buffer): readonly BlockKey[] {
  const kvTokens = r.promptTokens + r.maxTokens - 1;
  const full = Math.floor(kvTokens / blockSize);
  const have = r.keys.length;
  if (full <= have) return r.keys;
  const output = r.outputTokens();
  if (!output) return [...r.keys, ...Array.from({ length: full - have }, (_, i) => `${r.id}#gen${i}`)];
  const prompt = r.prompt();
  const tail = new Uint32Array(full * blockSize - have * blockSize);
  const fromPrompt = prompt.subarray(have * blockSize);
  tail.set(fromPrompt);
  for (let i = fromPrompt.length, k = 0; i < tail.length; i++, k++) tail[i] = output[k % output.length];
  return [...r.keys, ...blockKeys(tail, blockSize, have > 0 ? keyBytes(r.keys[have - 1]) : root)];
}
