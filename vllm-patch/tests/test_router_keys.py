"""(a) Router keys equal the frozen vectors of data/prefix-key-vectors.json (docs/prefix-keys.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prefix_router_vllm.router_keys import block_keys, chain_root

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "data" / "prefix-key-vectors.json").read_text())["cases"]


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_vectors(case: dict[str, Any]) -> None:
    root = chain_root(case["hashSeed"], case["model"], case["lora"])
    assert root.hex() == case["root"]
    assert [k.hex() for k in block_keys(case["tokens"], case["blockSize"], root)] == case["keys"]


def test_vectors_cover_the_spec_table() -> None:
    assert len(VECTORS) >= 10


def test_chain_continues_from_a_stored_key() -> None:
    case = next(c for c in VECTORS if c["name"] == "three blocks and a partial")
    keys = [bytes.fromhex(k) for k in case["keys"]]
    # A reporter that knows only block 0's key and the later tokens gets the same keys.
    assert block_keys(case["tokens"][16:], 16, keys[0]) == keys[1:]


@pytest.mark.parametrize(
    ("tokens", "block_size", "parent"),
    [([0] * 16, 0, b"\0" * 8), ([0] * 16, 16, b"\0" * 7), ([-1] + [0] * 15, 16, b"\0" * 8), ([2**32] + [0] * 15, 16, b"\0" * 8)],
    ids=["zero block size", "short parent", "negative id", "id over 32 bits"],
)
def test_rejects_bad_input(tokens: list[int], block_size: int, parent: bytes) -> None:
    with pytest.raises(ValueError):
        block_keys(tokens, block_size, parent)
