"""vLLM general plugin entry point (pyproject: [project.entry-points."vllm.general_plugins"]).

vLLM calls every general plugin's function in each of its processes — API server, EngineCore,
workers — before the Scheduler exists (vllm/plugins/__init__.py `load_general_plugins`), and may
call it more than once per process: register() is idempotent and cheap.

KVEventsConfig.publisher only accepts "null" | "zmq" (vllm/config/kv_events.py) and the factory
looks the name up in `EventPublisherFactory._registry` (vllm/distributed/kv_events.py), so the
smallest hook is to put our publisher under "zmq": users keep passing
`--kv-events-config '{"enable_kv_cache_events":true,"publisher":"zmq"}'`.
"""

from __future__ import annotations

import logging
import os

from .config import ConfigError, from_env
from .publisher import PrefixRouterPublisher

log = logging.getLogger("vllm.prefix_router")


def register() -> None:
    """Installs PrefixRouterPublisher as vLLM's "zmq" publisher when PREFIX_ROUTER_INGEST is set."""
    try:
        cfg = from_env(os.environ)
    except ConfigError as exc:
        log.error("prefix-router plugin disabled: %s", exc)
        return
    if cfg is None:
        log.debug("prefix-router plugin: PREFIX_ROUTER_INGEST is not set; nothing to do")
        return
    try:
        from vllm.distributed.kv_events import EventPublisherFactory  # lazily: vLLM is heavy
    except ImportError as exc:
        log.warning("prefix-router plugin: vLLM's KV events are not available (%s); nothing to do", exc)
        return
    registry = EventPublisherFactory._registry
    current = registry.get("zmq")
    if current is PrefixRouterPublisher:
        return
    PrefixRouterPublisher.zmq_publisher_cls = current
    registry["zmq"] = PrefixRouterPublisher
    log.info("prefix-router plugin: KV events of worker %s go to %s (publisher \"zmq\" replaced)", cfg.worker_id, cfg.target)
