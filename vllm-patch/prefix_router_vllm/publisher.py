"""PrefixRouterPublisher: what vLLM's EventPublisherFactory builds for "zmq" once the plugin is on.

vLLM side (vllm/distributed/kv_events.py, vllm/v1/core/sched/scheduler.py):
- The Scheduler calls `EventPublisherFactory.create(kv_events_config, data_parallel_index)`,
  which calls `_registry["zmq"](data_parallel_rank=…, endpoint=…, replay_endpoint=…,
  buffer_steps=…, hwm=…, max_queue_size=…, topic=…)` — every KVEventsConfig field but
  `publisher` and `enable_kv_cache_events`, as keywords. So the constructor mirrors
  ZmqEventPublisher's and takes **kwargs for fields a later vLLM adds.
- Once per engine step with events, `Scheduler.update_from_output` calls
  `publish(KVEventBatch(ts, events))` on the engine's hot path; `Scheduler.shutdown` calls
  `shutdown()`.
- At startup EngineCore reports `get_publisher_config()` (a KVEventsConfig or None) to the API
  server as this engine's KV event source (vLLM 0.32: `Scheduler.get_kv_event_publisher_config`);
  without the method the engine fails to start.

So publish() only appends to a bounded queue (never blocks; on overflow the batch is dropped and
counted, and the pusher resyncs); a daemon thread translates, batches and pushes. shutdown()
withdraws the worker's keys from the router, since the engine's cache goes with it. With
PREFIX_ROUTER_ALSO_ZMQ=1 every batch also goes to vLLM's own ZmqEventPublisher.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from .config import ConfigError, PluginConfig, from_env
from .pusher import Pusher
from .transport import GrpcTransport, Transport

log = logging.getLogger("vllm.prefix_router")

_STOP = object()
SHUTDOWN_TIMEOUT_S = 1.0  # as vLLM's ZmqEventPublisher.SHUTDOWN_TIMEOUT
DRAIN_PER_WAKE = 256


class PrefixRouterPublisher:
    """Pushes the engine's KV events to prefix-router. Thread-safe for one publishing thread."""

    # Set by plugin.register(): vLLM's original "zmq" publisher class, for ALSO_ZMQ and fallback.
    zmq_publisher_cls: Callable[..., Any] | None = None

    def __init__(
        self,
        data_parallel_rank: int = 0,
        endpoint: str = "tcp://*:5557",
        replay_endpoint: str | None = None,
        buffer_steps: int = 10_000,
        hwm: int = 100_000,
        max_queue_size: int = 100_000,
        topic: str = "",
        *,
        env: Mapping[str, str] | None = None,
        transport: Transport | None = None,
        **kwargs: Any,
    ) -> None:
        self._data_parallel_rank = data_parallel_rank
        self._closed = False
        self._dropped = 0
        self._delegate: Any = None
        zmq_args = dict(data_parallel_rank=data_parallel_rank, endpoint=endpoint, replay_endpoint=replay_endpoint, buffer_steps=buffer_steps, hwm=hwm, max_queue_size=max_queue_size, topic=topic, **kwargs)
        try:
            cfg = from_env(os.environ if env is None else env, data_parallel_rank)
        except ConfigError as exc:
            cfg = None
            log.error("prefix-router plugin: %s; KV events go to vLLM's own ZMQ publisher only", exc)
        if cfg is None or cfg.also_zmq:
            self._delegate = self._make_delegate(zmq_args)
        self.config: PluginConfig | None = cfg
        self.epoch = uuid.uuid4().hex
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=(cfg.queue_size or max_queue_size) if cfg else 1)
        self._pusher: Pusher | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if cfg is None:
            return
        if transport is None:
            transport = GrpcTransport(cfg.target, cfg.token, cfg.tls, cfg.rpc_timeout_ms / 1000, cfg.backoff_max_ms)
        self._transport = transport
        self._pusher = Pusher(cfg, transport, self.epoch)
        self._thread = threading.Thread(target=self._run, name="prefix-router-publisher", daemon=True)
        self._thread.start()
        log.info("prefix-router: pushing KV events of worker %s (model %s, epoch %s) to %s every %d ms", cfg.worker_id, cfg.model, self.epoch, cfg.target, cfg.flush_ms)

    def publish(self, events: Any) -> None:
        """Called by the Scheduler once per engine step: enqueue and return, never block."""
        if self._closed:
            return
        if getattr(events, "data_parallel_rank", 0) is None:
            events.data_parallel_rank = self._data_parallel_rank  # as ZmqEventPublisher.publish
        if self._delegate is not None:
            self._delegate.publish(events)
        if self._pusher is None:
            return
        try:
            self._queue.put_nowait(events)
        except queue.Full:
            self._dropped += 1  # only the scheduler thread writes it; the pusher thread reads

    def shutdown(self) -> None:
        """Called by Scheduler.shutdown: withdraw this worker's keys (one try, ≤ 1 s), then stop."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass  # the thread sees _stopping
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_TIMEOUT_S)
        if self._pusher is not None:
            self._transport.close()
        if self._delegate is not None:
            self._delegate.shutdown()

    def get_publisher_config(self) -> Any:
        """The ZMQ stream's config when vLLM's own publisher also runs (ALSO_ZMQ), else None: no ZMQ source."""
        getter = getattr(self._delegate, "get_publisher_config", None)
        return getter() if getter is not None else None

    def stats(self) -> dict[str, Any]:
        """Counters for logs and tests (read without locks: values may be a step behind)."""
        out: dict[str, Any] = {"epoch": self.epoch, "dropped_steps": self._dropped, "queued": self._queue.qsize()}
        pusher = self._pusher
        for _ in range(3):  # the pusher thread may grow a dict while we copy it
            try:
                if pusher is not None:
                    out.update(asdict(pusher.stats), last_seq=pusher.last_seq, translator=asdict(pusher.translator.stats), table=len(pusher.translator))
                break
            except RuntimeError:
                continue
        return out

    def _make_delegate(self, zmq_args: dict[str, Any]) -> Any:
        cls = type(self).zmq_publisher_cls
        if cls is None:
            log.warning("prefix-router: vLLM's ZMQ publisher is not available; not feeding the ZMQ stream")
            return None
        return cls(**zmq_args)

    def _run(self) -> None:
        assert self._pusher is not None
        pusher, seen_dropped, clock = self._pusher, 0, time.monotonic
        stop = False
        while not stop:
            try:
                now = clock()
                wait = min(max(0.0, pusher.next_deadline(now) - now), 1.0)
                stop = self._drain(pusher, wait)
                if self._dropped != seen_dropped:
                    pusher.mark_gap(f"{self._dropped - seen_dropped} engine steps of KV events dropped (queue of {self._queue.maxsize} full)")
                    seen_dropped = self._dropped
                pusher.tick(clock())
            except Exception:  # never let a bug kill the thread: the engine would go unreported
                log.exception("prefix-router: publisher loop error")
                time.sleep(0.1)
            stop = stop or self._stopping.is_set()
        try:
            pusher.farewell()
        except Exception:
            log.exception("prefix-router: farewell failed")

    def _drain(self, pusher: Pusher, wait: float) -> bool:
        """Translates what the queue holds (waiting up to `wait` for the first); True on stop."""
        try:
            item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            return False
        for n in range(DRAIN_PER_WAKE):
            if n > 0:
                now = time.monotonic()
                if now >= pusher.next_deadline(now):
                    return False  # a flush, heartbeat or retry is due: a busy engine must not starve it
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return False
            if item is _STOP:
                return True
            try:
                pusher.ingest(item.events, time.monotonic())
            except Exception:
                log.exception("prefix-router: could not translate a KV event batch")
                pusher.mark_gap("a KV event batch could not be translated")
        return False
