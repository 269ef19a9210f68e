"""Environment parsing: defaults, and errors that name the variable, the value and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefix_router_vllm.config import ConfigError, from_env

BASE = {"PREFIX_ROUTER_INGEST": "10.0.0.5:9003", "PREFIX_ROUTER_WORKER_ID": "w1", "PREFIX_ROUTER_MODEL": "qwen3", "PREFIX_ROUTER_TOKEN": "secret-token-0123456789"}


def test_unset_ingest_means_disabled() -> None:
    assert from_env({}) is None
    assert from_env({"PREFIX_ROUTER_WORKER_ID": "w1"}) is None


def test_defaults() -> None:
    cfg = from_env(BASE)
    assert cfg is not None
    assert (cfg.target, cfg.worker_id, cfg.model, cfg.token, cfg.hash_seed, cfg.block_size) == ("10.0.0.5:9003", "w1", "qwen3", "secret-token-0123456789", "0", 16)
    assert (cfg.flush_ms, cfg.max_batch_events, cfg.queue_size, cfg.heartbeat_ms, cfg.tls, cfg.also_zmq) == (100, 1000, None, 2000, None, False)


def test_token_file_and_dp_rank(tmp_path: Path) -> None:
    (tmp_path / "token-1").write_text("rank-one-token-0123456\n")
    env = {**BASE, "PREFIX_ROUTER_TOKEN": "", "PREFIX_ROUTER_TOKEN_FILE": str(tmp_path / "token-{dp_rank}"), "PREFIX_ROUTER_WORKER_ID": "w1-dp{dp_rank}"}
    cfg = from_env(env, dp_rank=1)
    assert cfg is not None and (cfg.worker_id, cfg.token) == ("w1-dp1", "rank-one-token-0123456")


def test_tls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    cfg = from_env({**BASE, "PREFIX_ROUTER_TLS_CA": str(ca), "PREFIX_ROUTER_ALSO_ZMQ": "1"})
    assert cfg is not None and cfg.tls is not None and cfg.tls.ca_file == str(ca) and cfg.also_zmq


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"PREFIX_ROUTER_INGEST": "nohost"}, "PREFIX_ROUTER_INGEST='nohost': expected host:port"),
        ({"PREFIX_ROUTER_INGEST": "h:70000"}, "PREFIX_ROUTER_INGEST='h:70000'"),
        ({"PREFIX_ROUTER_WORKER_ID": ""}, "PREFIX_ROUTER_WORKER_ID is not set"),
        ({"PREFIX_ROUTER_WORKER_ID": "w 1"}, "PREFIX_ROUTER_WORKER_ID='w 1'"),
        ({"PREFIX_ROUTER_MODEL": ""}, "PREFIX_ROUTER_MODEL is not set"),
        ({"PREFIX_ROUTER_FLUSH_MS": "soon"}, "PREFIX_ROUTER_FLUSH_MS='soon': expected an integer"),
        ({"PREFIX_ROUTER_FLUSH_MS": "0"}, "PREFIX_ROUTER_FLUSH_MS='0': must be between 1 and 60000"),
        ({"PREFIX_ROUTER_MAX_BATCH_EVENTS": "20000"}, "PREFIX_ROUTER_MAX_BATCH_EVENTS='20000'"),
        ({"PREFIX_ROUTER_ALSO_ZMQ": "maybe"}, "PREFIX_ROUTER_ALSO_ZMQ='maybe'"),
        ({"PREFIX_ROUTER_TOKEN_FILE": "/nonexistent"}, "set PREFIX_ROUTER_TOKEN or PREFIX_ROUTER_TOKEN_FILE, not both"),
        ({"PREFIX_ROUTER_TOKEN": "", "PREFIX_ROUTER_TOKEN_FILE": "/nonexistent/t"}, "PREFIX_ROUTER_TOKEN_FILE='/nonexistent/t': cannot read"),
        ({"PREFIX_ROUTER_TLS_CA": "/nonexistent/ca.pem"}, "PREFIX_ROUTER_TLS_CA='/nonexistent/ca.pem': no such file"),
        ({"PREFIX_ROUTER_BACKOFF_MS": "500", "PREFIX_ROUTER_BACKOFF_MAX_MS": "100"}, "PREFIX_ROUTER_BACKOFF_MAX_MS=100 is below"),
    ],
)
def test_errors_name_the_variable(over: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_env({**BASE, **over})
    assert message in str(info.value)
