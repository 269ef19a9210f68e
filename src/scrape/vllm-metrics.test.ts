import { describe, expect, it } from "vitest";
import { readSamples } from "./prometheus-text";
import { parseVllmMetrics } from "./vllm-metrics";

// The shape vLLM 0.32 serves (prometheus_client): engine and model_name labels, _created gauges,
// cache_config_info with ~40 labels (a few kept here), HELP/TYPE lines.
const VLLM_032 = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="qwen3"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="qwen3"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="qwen3"} 0.25
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="qwen3"} 12345.0
vllm:prefix_cache_queries_created{engine="0",model_name="qwen3"} 1.7e+09
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="32",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="65536",prefix_caching_hash_algo="sha256"} 1.0
`;

describe("parseVllmMetrics", () => {
  it("reads a vLLM 0.32 exposition: running, waiting, KV usage, KV capacity from cache_config_info", () => {
    expect(parseVllmMetrics(VLLM_032)).toEqual({ ok: true, sample: { running: 3, waiting: 2, kvUsage: 0.25, kvCapacityTokens: 65536 * 32 } });
  });

  it("sums data-parallel engines and averages their usage", () => {
    const two = VLLM_032 + VLLM_032.replace(/engine="0"/g, 'engine="1"').replace("} 3.0", "} 1.0").replace("} 0.25", "} 0.75");
    const parsed = parseVllmMetrics(two);
    expect(parsed).toEqual({ ok: true, sample: { running: 4, waiting: 4, kvUsage: 0.5, kvCapacityTokens: 2 * 65536 * 32 } });
  });

  it("accepts older vLLM's gpu_cache_usage_perc and no cache_config_info (capacity unknown)", () => {
    const old = 'vllm:num_requests_running{model_name="m"} 1\nvllm:num_requests_waiting{model_name="m"} 0\nvllm:gpu_cache_usage_perc{model_name="m"} 0.5\n';
    expect(parseVllmMetrics(old)).toEqual({ ok: true, sample: { running: 1, waiting: 0, kvUsage: 0.5, kvCapacityTokens: null } });
  });

  it("says what is missing when the page is not vLLM's", () => {
    expect(parseVllmMetrics("# nothing\nprocess_cpu_seconds_total 3\n")).toEqual({ ok: false, error: expect.stringMatching(/no vllm:num_requests_running/) });
    expect(parseVllmMetrics("<html>oops</html>")).toMatchObject({ ok: false });
  });

  it("clamps nonsense: negative gauges, usage above 1, NaN", () => {
    const text = 'vllm:num_requests_running -3\nvllm:num_requests_waiting NaN\nvllm:kv_cache_usage_perc 7\n';
    expect(parseVllmMetrics(text)).toEqual({ ok: true, sample: { running: 0, waiting: 0, kvUsage: 1, kvCapacityTokens: null } });
  });
});

describe("readSamples", () => {
  it("keeps only wanted names, reads escaped label values, skips malformed lines", () => {
    const text = 'a{x="1",y="q\\"uote\\\\n"} 2 1700000000\nb 3\na{broken 4\na{x="2"} notanumber\n\na 5\n';
    const got = readSamples(text, new Set(["a"]));
    expect(got.get("a")).toEqual([
      { labels: { x: "1", y: 'q"uote\\n' }, value: 2 },
      { labels: {}, value: 5 },
    ]);
    expect(got.has("b")).toBe(false);
  });
});
