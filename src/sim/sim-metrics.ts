/**
 * /metrics for a simulated replica in Prometheus text format (0.0.4), under vLLM's metric names
 * and labels (vllm/v1/metrics/loggers.py), so load-aware routers and dashboards read it as they
 * read vLLM. Latencies are in model time (the cost model's seconds, not scaled wall time).
 */
import type { ReplicaMetrics, RequestTiming } from "./replica-model";

/** vLLM's buckets for vllm:time_to_first_token_seconds. */
export const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
/** vLLM's buckets for vllm:e2e_request_latency_seconds. */
export const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];


/** vllm:cache_config_info labels of vLLM 0.32 that the simulator has no notion of, at their defaults. */
const CACHE_CONFIG_DEFAULTS: Readonly<Record<string, string>> = {
  _block_size_resolved: "True",
  cache_dtype: "auto",
  cache_hit_alignment_tokens: "None",
  enable_mamba_shared_prefix_checkpoint: "False",
  enable_prefix_caching: "True",
  gpu_memory_utilization: "0.9",
  is_attention_free: "False",
  kv_cache_dtype_skip_layers: "[]",
  kv_cache_layout: "None",
  kv_cache_max_concurrency: "None",
  kv_cache_memory_bytes: "None",
  kv_offloading_backend: "None",
  kv_offloading_size: "None",
  kv_sharing_fast_prefill: "False",
  mamba_block_size: "None",
  mamba_cache_dtype: "auto",
  mamba_cache_mode: "None",
  mamba_page_size_padded: "None",
  mamba_ssm_cache_dtype: "auto",
  num_cpu_blocks: "None",
  num_gpu_blocks_override: "None",
  prefix_cache_retention_interval: "None",
  prefix_caching_hash_algo: "sha256",
  prefix_match_unit: "None",
  replayssm_buffer_len: "None",
  skip_page_size_padded: "False",
  sliding_window: "None",
  swa_bounded_replay: "False",
  use_kda_recoverssm: "False",
  use_replayssm: "False",
  user_specified_block_size: "True",
};

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly buckets: readonly number[]) {
    this.counts = new Array<number>(buckets.length).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) this.counts[i]++;
  }

  lines(name: string, labels: string): string[] {
    const out = this.buckets.map((le, i) => `${name}_bucket{${labels},le="${le}"} ${this.counts[i]}`);
    out.push(`${name}_bucket{${labels},le="+Inf"} ${this.count}`, `${name}_sum{${labels}} ${this.sum}`, `${name}_count{${labels}} ${this.count}`);
    return out;
  }
}

/** Counters and histograms fed by completed requests. */
export class SimMetrics {
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly e2e = new Histogram(E2E_BUCKETS);
  promptTokens = 0;
  generationTokens = 0;
  succeeded = 0;

  record(t: RequestTiming): void {
    this.ttft.observe((t.firstTokenMs - t.arrivalMs) / 1000);
    this.e2e.observe((t.finishMs - t.arrivalMs) / 1000);
    this.promptTokens += t.promptTokens;
    this.generationTokens += t.outputTokens;
    this.succeeded++;
  }

  /** `config`: the replica's cache, exported as vllm:cache_config_info labels as vLLM does. */
  render(model: string, engine: ReplicaMetrics, config?: { readonly blockSize: number; readonly totalBlocks: number }): string {
    const labels = `engine="0",model_name="${model.replace(/["\\\n]/g, "_")}"`;
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, samples: string[]) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples);
    const one = (name: string, value: number) => [`${name}{${labels}} ${value}`];
    metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", one("vllm:num_requests_running", engine.running));
    metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", one("vllm:num_requests_waiting", engine.waiting));
    metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", one("vllm:kv_cache_usage_perc", engine.kvUsage));
    // Counters as vLLM's prometheus_client writes them: the TYPE line names the _total sample.
    metric("vllm:prefix_cache_queries_total", "counter", "Prefix cache queries, in terms of number of queried tokens.", one("vllm:prefix_cache_queries_total", engine.prefixQueryTokens));
    metric("vllm:prefix_cache_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens.", one("vllm:prefix_cache_hits_total", engine.prefixHitTokens));
    metric("vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.", one("vllm:num_preemptions_total", 0)); // admission never over-commits
    metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", one("vllm:prompt_tokens_total", this.promptTokens));
    metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", one("vllm:generation_tokens_total", this.generationTokens));
    metric("vllm:request_success_total", "counter", "Count of successfully processed requests.", [`vllm:request_success_total{${labels},finished_reason="length"} ${this.succeeded}`]);
    if (config) {
      // vLLM 0.32 labels this gauge with every CacheConfig field and the engine, not the model
      // (checked by e2e/vllm-real.test.ts); the fields the simulator has no notion of get vLLM's
      // defaults for a plain attention model.
      const fields: Record<string, string | number> = {
        ...CACHE_CONFIG_DEFAULTS,
        block_size: config.blockSize,
        hash_block_size: config.blockSize,
        effective_attention_block_size: config.blockSize,
        num_gpu_blocks: config.totalBlocks,
        kv_cache_size_tokens: config.blockSize * config.totalBlocks,
      };
      const info = Object.entries(fields).map(([k, v]) => `${k}="${v}"`).join(",");
      metric("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig", [`vllm:cache_config_info{${info},engine="0"} 1.0`]);
    }
    metric("vllm:time_to_first_token_seconds", "histogram", "Histogram of time to first token in seconds.", this.ttft.lines("vllm:time_to_first_token_seconds", labels));
    metric("vllm:e2e_request_latency_seconds", "histogram", "Histogram of e2e request latency in seconds.", this.e2e.lines("vllm:e2e_request_latency_seconds", labels));
    return `${lines.join("\n")}\n`;
  }
}
