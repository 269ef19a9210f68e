"""Router prefix keys, exactly as docs/prefix-keys.md (v1) defines them; frozen vectors in
data/prefix-key-vectors.json are checked by tests/test_router_keys.py.

  root   = SHA-256("prefix-router/v1" 0x00 hashSeed 0x00 model 0x00 lora)[0..8)
  key[i] = SHA-256(key[i-1] ‖ le32(t) for each token t of block i)[0..8)      (key[-1] = root)

A trailing partial block has no key (vLLM caches and reports only full blocks).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

KEY_BYTES = 8
_DOMAIN = b"prefix-router/v1"


def chain_root(hash_seed: str, model: str, lora: str = "") -> bytes:
    """The 8-byte parent of block 0 for one (seed, model, adapter) namespace."""
    h = hashlib.sha256()
    h.update(_DOMAIN + b"\x00" + hash_seed.encode() + b"\x00" + model.encode() + b"\x00" + lora.encode())
    return h.digest()[:KEY_BYTES]


def block_keys(tokens: Sequence[int], block_size: int, parent: bytes) -> list[bytes]:
    """Keys (8 bytes each) of every full block of `tokens`, chained from `parent`.

    Raises ValueError for a bad block size or parent, or a token id outside 0 … 2³²−1.
    """
    if block_size <= 0:
        raise ValueError(f"block_size must be a positive integer, got {block_size}")
    if len(parent) != KEY_BYTES:
        raise ValueError(f"parent key must be {KEY_BYTES} bytes, got {len(parent)}")
    blocks = len(tokens) // block_size
    if blocks == 0:
        return []
    try:
        # One pack for the whole run: le32 of every token of the full blocks.
        packed = struct.pack(f"<{blocks * block_size}I", *tokens[: blocks * block_size])
    except struct.error as exc:
        raise ValueError(f"token id out of range 0…2³²−1: {exc}") from exc
    stride = 4 * block_size
    keys: list[bytes] = []
    key = parent
    for b in range(blocks):
        key = hashlib.sha256(key + packed[b * stride : (b + 1) * stride]).digest()[:KEY_BYTES]
        keys.append(key)
    return keys


def key_hex(key: bytes) -> str:
    """A key as 16 lowercase hex digits (the spec's and the admin API's notation)."""
    return key.hex()
