"""KeyTranslator: vLLM events → router-key ops and the live key set (pure, no router)."""

from __future__ import annotations

import random

import pytest

from prefix_router_vllm.ops import Op
from prefix_router_vllm.translator import KeyTranslator
from vllm_shapes import AllBlocksCleared, BlockRemoved, BlockStored, FakeEngine, random_tokens, router_keys

RNG = random.Random(7)


def hexes(op: Op) -> list[str]:
    return [op.keys[i : i + 8].hex() for i in range(0, len(op.keys), 8)]


def live(t: KeyTranslator) -> set[str]:
    return {k.hex() for k in t.live_keys()}


@pytest.fixture
def t() -> KeyTranslator:
    return KeyTranslator("0", "qwen3", 16)


@pytest.mark.parametrize("int_hashes", [False, True], ids=["bytes hashes", "int hashes"])
def test_stored_chain_is_rekeyed_through_the_parent(t: KeyTranslator, int_hashes: bool) -> None:
    engine = FakeEngine(int_hashes=int_hashes)
    prompt = random_tokens(16 * 5 + 3, RNG)
    first = engine.store(prompt[: 16 * 2])
    rest = engine.store(prompt)
    (op1,) = t.translate([first])
    (op2,) = t.translate([rest])
    expected = router_keys(prompt)
    assert (op1.kind, op1.parent, hexes(op1)) == ("stored", b"", expected[:2])
    assert (op2.kind, op2.parent.hex(), hexes(op2)) == ("stored", expected[1], expected[2:])
    assert live(t) == set(expected)


def test_lora_root_comes_from_lora_name(t: KeyTranslator) -> None:
    prompt = random_tokens(32, RNG)
    (op,) = t.translate([FakeEngine().store(prompt, lora_name="sql-adapter", lora_id=3)])
    assert hexes(op) == router_keys(prompt, lora="sql-adapter")
    assert hexes(op) != router_keys(prompt)


def test_lora_id_without_name_is_untranslatable(t: KeyTranslator) -> None:
    event = FakeEngine().store(random_tokens(16, RNG), lora_id=3)
    assert t.translate([event]) == []
    assert t.stats.untranslatable == 1


def test_unknown_parent_skips_the_event(t: KeyTranslator) -> None:
    engine = FakeEngine()
    prompt = random_tokens(48, RNG)
    engine.store(prompt[:16])  # never reported
    assert t.translate([engine.store(prompt)]) == []
    assert t.stats.unknown_parent == 1 and live(t) == set()


@pytest.mark.parametrize("medium", ["CPU", "disk", "LMCache"])
def test_other_media_are_ignored(t: KeyTranslator, medium: str) -> None:
    engine = FakeEngine()
    event = engine.store(random_tokens(32, RNG), medium=medium)
    assert t.translate([event, BlockRemoved(event.block_hashes, medium)]) == []
    assert t.stats.ignored == 2


def test_none_medium_counts_as_gpu(t: KeyTranslator) -> None:
    prompt = random_tokens(16, RNG)
    (op,) = t.translate([FakeEngine().store(prompt, medium=None)])
    assert hexes(op) == router_keys(prompt)


def test_sliding_window_groups_are_ignored_with_their_removals(t: KeyTranslator) -> None:
    prompt = random_tokens(32, RNG)
    h = FakeEngine().hashes(prompt)
    full = BlockStored(h, None, prompt, 16, None, "GPU", None, group_idx=0, kv_cache_spec_kind="full_attention")
    window = BlockStored(h, None, prompt, 16, None, "GPU", None, group_idx=1, kv_cache_spec_kind="sliding_window")
    ops = t.translate([full, window, BlockRemoved(h, "GPU", group_idx=1)])
    assert [op.kind for op in ops] == ["stored"]
    assert live(t) == set(router_keys(prompt))


def test_block_size_mismatch_is_rejected(t: KeyTranslator) -> None:
    event = FakeEngine(block_size=32).store(random_tokens(64, RNG))
    assert t.translate([event]) == [] and t.stats.rejected_block_size == 1


def test_a_key_goes_only_with_its_last_block(t: KeyTranslator) -> None:
    # vLLM caches duplicate blocks without de-duplicating: two stores, two evictions.
    engine = FakeEngine()
    prompt = random_tokens(32, RNG)
    event = engine.store(prompt)
    t.translate([event, event])
    assert t.translate([BlockRemoved(event.block_hashes, "GPU")]) == []
    (op,) = t.translate([BlockRemoved(event.block_hashes, "GPU")])
    assert (op.kind, hexes(op)) == ("removed", router_keys(prompt))
    assert live(t) == set() and len(t) == 0


def test_two_vllm_hashes_of_one_key(t: KeyTranslator) -> None:
    # A cache_salt changes vLLM's hash but not the router key.
    prompt = random_tokens(16, RNG)
    a, b = FakeEngine().store(prompt), FakeEngine().store(prompt)
    t.translate([a, b])
    assert t.translate([BlockRemoved(a.block_hashes, "GPU")]) == []
    assert [op.kind for op in t.translate([BlockRemoved(b.block_hashes, "GPU")])] == ["removed"]


def test_unknown_removals_are_counted(t: KeyTranslator) -> None:
    assert t.translate([BlockRemoved([b"nope"], "GPU")]) == []
    assert t.stats.unknown_removals == 1


def test_all_blocks_cleared_empties_the_view(t: KeyTranslator) -> None:
    engine = FakeEngine()
    t.translate([engine.store(random_tokens(64, RNG))])
    assert [op.kind for op in t.translate([AllBlocksCleared()])] == ["cleared"]
    assert live(t) == set() and len(t) == 0


def test_cap_evicts_the_least_recently_stored() -> None:
    t = KeyTranslator("0", "qwen3", 16, max_entries=3)
    engine = FakeEngine()
    a, b = random_tokens(32, RNG), random_tokens(32, RNG)
    t.translate([engine.store(a)])
    ops = t.translate([engine.store(b)])
    assert [(op.kind, hexes(op)) for op in ops] == [("stored", router_keys(b)), ("removed", router_keys(a)[:1])]
    assert live(t) == set(router_keys(a)[1:] + router_keys(b)) and t.stats.cap_evictions == 1


def test_bad_token_ids_are_untranslatable(t: KeyTranslator) -> None:
    event = BlockStored([b"h"], None, [-5] * 16, 16, None, "GPU", None)
    assert t.translate([event]) == [] and t.stats.untranslatable == 1
