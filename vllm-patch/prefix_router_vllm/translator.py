"""KeyTranslator: vLLM KV events → ingest ops on router keys, plus the worker's live key set.

vLLM's block hashes depend on PYTHONHASHSEED and the hash algorithm (docs/prefix-keys.md), so we
re-key. BlockStored carries the tokens of exactly its new blocks and the vLLM hash of the block
before them (vllm/v1/core/block_pool.py `cache_full_blocks`: token_ids =
all_token_ids[num_cached_blocks·block_size : num_full_blocks·block_size]), so:

  parent key = chain_root(hash_seed, model, lora_name or "")   parent_block_hash is None
             = table[parent_block_hash]                        otherwise (unknown → skip, counted)
  keys       = block_keys(token_ids, block_size, parent key)

Events are read by attribute, like vllm/distributed/kv_events.py defines them (msgspec structs
BlockStored{block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium, lora_name,
extra_keys, group_idx, kv_cache_spec_kind, …}, BlockRemoved{block_hashes, medium, group_idx},
AllBlocksCleared); fields newer than the running vLLM default to None.

Counting, unlike the router's ZMQ translator (src/ingest/hash-translator.ts): vLLM does not
de-duplicate cached blocks (two blocks may carry one hash, each stored and evicted on its own),
and two vLLM hashes may name one router key (e.g. a cache_salt changes vLLM's hash, not ours). So
the table counts blocks per hash and `live` counts blocks per router key; a key is reported
removed only when the last block holding it goes. The table holds what the worker holds
(removals delete) with a hard cap `max_entries` as a safety net: past it the least recently stored
hash goes and, if that was its key's last block, the key is removed from the router too.

Filters (same as the router's): media other than None/"GPU" (offload tiers) and cache groups that
are not full attention (sliding window, mamba) are ignored; a BlockStored whose block_size is not
the configured one is rejected (its keys would be cut at other boundaries).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .ops import Op
from .router_keys import block_keys, chain_root

# vllm/v1/kv_cache_interface.py: the cache spec kinds whose blocks make a prefix hit.
PREFIX_KINDS = frozenset({"full_attention", "mla_attention", "sink_full_attention"})
GPU_MEDIA = (None, "GPU")


@dataclass
class TranslatorStats:
    stored_blocks: int = 0
    removed_keys: int = 0
    cleared: int = 0
    unknown_parent: int = 0
    untranslatable: int = 0
    rejected_block_size: int = 0
    ignored: int = 0
    unknown_removals: int = 0
    cap_evictions: int = 0
    last_issue: str = ""
    by_kind: dict[str, int] = field(default_factory=dict)


class KeyTranslator:
    """Not thread-safe: one owner (the pusher thread) calls translate() and live_keys()."""

    def __init__(self, hash_seed: str, model: str, block_size: int, max_entries: int = 2_000_000) -> None:
        if block_size <= 0 or max_entries <= 0:
            raise ValueError("block_size and max_entries must be positive")
        self._hash_seed, self._model, self._block_size, self._max_entries = hash_seed, model, block_size, max_entries
        self._table: OrderedDict[Hashable, list[Any]] = OrderedDict()  # vLLM hash → [key, blocks]
        self._live: dict[bytes, int] = {}  # router key → blocks holding it
        self._roots: dict[str, bytes] = {}
        self._ignored_groups: set[int] = set()
        self.stats = TranslatorStats()

    def __len__(self) -> int:
        return len(self._table)

    def live_keys(self) -> list[bytes]:
        """Every router key the worker holds now (the snapshot a Resync sends)."""
        return list(self._live)

    def translate(self, events: Iterable[Any]) -> list[Op]:
        ops: list[Op] = []
        for event in events:
            kind = type(event).__name__
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
            if kind == "BlockStored":
                self._stored(event, ops)
            elif kind == "BlockRemoved":
                self._removed(event, ops)
            elif kind == "AllBlocksCleared":
                self._table.clear()
                self._live.clear()
                self.stats.cleared += 1
                ops.append(Op("cleared"))
            else:
                self._issue("ignored", f"unknown event type {kind}")
        return ops

    def _stored(self, event: Any, ops: list[Op]) -> None:
        if self._skip(event, stored=True):
            return
        size = getattr(event, "block_size", self._block_size)
        if size != self._block_size:
            return self._issue("rejected_block_size", f"block_size {size} ≠ configured {self._block_size}")
        hashes, tokens = list(event.block_hashes), event.token_ids
        if len(tokens) != len(hashes) * size:
            return self._issue("untranslatable", f"{len(tokens)} token ids for {len(hashes)} blocks of {size}")
        parent_hash = event.parent_block_hash
        if parent_hash is None:
            lora_name, lora_id = getattr(event, "lora_name", None), getattr(event, "lora_id", None)
            if lora_name is None and lora_id is not None:
                return self._issue("untranslatable", f"lora_id {lora_id} without lora_name (vLLM too old)")
            parent, wire_parent = self._root(lora_name or ""), b""
        else:
            entry = self._table.get(parent_hash)
            if entry is None:
                # Its parent was never reported to us (dropped, filtered or capped): the chain
                # cannot be re-keyed. Counted; a queue overflow triggers a resync on its own.
                return self._issue("unknown_parent", f"unknown parent {parent_hash!r}")
            parent = wire_parent = entry[0]
        try:
            keys = block_keys(tokens, size, parent)
        except ValueError as exc:
            return self._issue("untranslatable", str(exc))
        released: list[bytes] = []
        for h, k in zip(hashes, keys):
            self._hold(h, k, released)
        self.stats.stored_blocks += len(keys)
        if released:
            ops.append(Op("removed", b"".join(released)))
        if keys:
            ops.append(Op("stored", b"".join(keys), wire_parent))
        evicted: list[bytes] = []
        self._enforce_cap(evicted)  # after the store: it may evict what this event stored
        if evicted:
            ops.append(Op("removed", b"".join(evicted)))

    def _removed(self, event: Any, ops: list[Op]) -> None:
        if self._skip(event, stored=False):
            return
        released: list[bytes] = []
        for h in event.block_hashes:
            entry = self._table.get(h)
            if entry is None:
                self.stats.unknown_removals += 1
                continue
            entry[1] -= 1
            if entry[1] == 0:
                del self._table[h]
            self._release(entry[0], 1, released)
        if released:
            ops.append(Op("removed", b"".join(released)))

    def _hold(self, h: Hashable, key: bytes, released: list[bytes]) -> None:
        entry = self._table.get(h)
        if entry is not None and entry[0] != key:
            # One vLLM hash for other content (another adapter or seed): the old mapping is void.
            del self._table[h]
            self._release(entry[0], entry[1], released)
            entry = None
        if entry is None:
            self._table[h] = [key, 1]
        else:
            entry[1] += 1
            self._table.move_to_end(h)  # most recently stored goes last for the cap
        self._live[key] = self._live.get(key, 0) + 1
        if key in released:  # re-stored in the same event: not gone after all
            released.remove(key)

    def _release(self, key: bytes, blocks: int, released: list[bytes]) -> None:
        left = self._live.get(key, 0) - blocks
        if left > 0:
            self._live[key] = left
        else:
            self._live.pop(key, None)
            released.append(key)
            self.stats.removed_keys += 1

    def _enforce_cap(self, released: list[bytes]) -> None:
        while len(self._table) > self._max_entries:
            _, (key, blocks) = self._table.popitem(last=False)
            self._release(key, blocks, released)
            self.stats.cap_evictions += 1

    def _skip(self, event: Any, stored: bool) -> bool:
        """True for events about a medium or cache group we do not track."""
        medium = getattr(event, "medium", None)
        if medium not in GPU_MEDIA:
            self._issue("ignored", f"medium {medium}")
            return True
        group = getattr(event, "group_idx", None)
        if group is None:
            return False
        spec_kind = getattr(event, "kv_cache_spec_kind", None) if stored else None
        if spec_kind is not None and spec_kind not in PREFIX_KINDS:
            self._ignored_groups.add(group)  # its removals carry only group_idx: remember it
        if group in self._ignored_groups:
            self._issue("ignored", f"cache group {group} is not full attention")
            return True
        return False

    def _root(self, lora: str) -> bytes:
        root = self._roots.get(lora)
        if root is None:
            root = self._roots[lora] = chain_root(self._hash_seed, self._model, lora)
        return root

    def _issue(self, counter: str, reason: str) -> None:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        self.stats.last_issue = reason
