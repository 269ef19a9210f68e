"""The plugin's configuration, read from environment variables and validated in one place.

Every error names the variable, the value and the reason. `PREFIX_ROUTER_INGEST` unset means
"plugin disabled" (from_env returns None), not an error.

  PREFIX_ROUTER_INGEST            host:port of the router's ingest gRPC server (enables the plugin)
  PREFIX_ROUTER_WORKER_ID         this worker's id in the router config; "{dp_rank}" is replaced
  PREFIX_ROUTER_MODEL             canonical model name in the router config
  PREFIX_ROUTER_TOKEN             bearer token (or PREFIX_ROUTER_TOKEN_FILE: a file holding it;
                                  "{dp_rank}" is replaced in the path)
  PREFIX_ROUTER_HASH_SEED         "0"      must equal the router's hashSeed
  PREFIX_ROUTER_BLOCK_SIZE        16       must equal vLLM's --block-size and the router's blockSize
  PREFIX_ROUTER_FLUSH_MS          100      a batch is cut this long after its first event
  PREFIX_ROUTER_MAX_BATCH_EVENTS  1000     … or as soon as it holds this many events
  PREFIX_ROUTER_MAX_BATCH_KEYS    100000   … or this many keys
  PREFIX_ROUTER_QUEUE_SIZE        vLLM's max_queue_size (engine steps buffered before dropping)
  PREFIX_ROUTER_HEARTBEAT_MS      2000     idle heartbeat period (keep well under livenessTimeoutMs)
  PREFIX_ROUTER_RPC_TIMEOUT_MS    5000     deadline of one Push / Resync call
  PREFIX_ROUTER_BACKOFF_MS        100      first retry delay; doubles per failure …
  PREFIX_ROUTER_BACKOFF_MAX_MS    5000     … up to this
  PREFIX_ROUTER_MAX_TABLE_ENTRIES 2000000  safety cap on the vLLM-hash → router-key table
  PREFIX_ROUTER_RESYNC_PAGE_KEYS  65536    keys per Resync page (8 bytes each)
  PREFIX_ROUTER_TLS_CA            PEM CA file: use TLS and verify the router against it
  PREFIX_ROUTER_TLS               1 = TLS with the system's roots (implied by TLS_CA)
  PREFIX_ROUTER_TLS_CERT/_KEY     PEM client certificate and key (router's ingest.tls.clientCa)
  PREFIX_ROUTER_ALSO_ZMQ          1 = still feed vLLM's own ZMQ publisher (--kv-events-config)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

ENV_PREFIX = "PREFIX_ROUTER_"
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_WORKER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class ConfigError(ValueError):
    """A bad PREFIX_ROUTER_* variable; the message names it, its value and the reason."""


@dataclass(frozen=True)
class TlsConfig:
    ca_file: str | None
    cert_file: str | None
    key_file: str | None


@dataclass(frozen=True)
class PluginConfig:
    target: str
    worker_id: str
    model: str
    token: str | None
    hash_seed: str = "0"
    block_size: int = 16
    flush_ms: int = 100
    max_batch_events: int = 1000
    max_batch_keys: int = 100_000
    queue_size: int | None = None
    heartbeat_ms: int = 2000
    rpc_timeout_ms: int = 5000
    backoff_ms: int = 100
    backoff_max_ms: int = 5000
    max_table_entries: int = 2_000_000
    resync_page_keys: int = 65536
    tls: TlsConfig | None = None
    also_zmq: bool = False

    def for_rank(self, dp_rank: int) -> PluginConfig:
        """This config for one data-parallel rank: "{dp_rank}" in the worker id is replaced."""
        worker = self.worker_id.replace("{dp_rank}", str(dp_rank))
        if not _WORKER_ID.match(worker):
            raise ConfigError(f"{ENV_PREFIX}WORKER_ID={self.worker_id!r} gives {worker!r} for dp rank {dp_rank}: expected 1-64 of A-Z a-z 0-9 . _ -")
        return replace(self, worker_id=worker)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    value = _opt_int(env, name, minimum, maximum)
    return default if value is None else value


def _opt_int(env: Mapping[str, str], name: str, minimum: int, maximum: int) -> int | None:
    raw = env.get(ENV_PREFIX + name, "").strip()
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r}: expected an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r}: must be between {minimum} and {maximum}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(ENV_PREFIX + name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{ENV_PREFIX}{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(ENV_PREFIX + name, "").strip()
    if not value:
        raise ConfigError(f"{ENV_PREFIX}{name} is not set (required when {ENV_PREFIX}INGEST is set)")
    return value


def _file(env: Mapping[str, str], name: str) -> str | None:
    path = env.get(ENV_PREFIX + name, "").strip()
    if path and not Path(path).is_file():
        raise ConfigError(f"{ENV_PREFIX}{name}={path!r}: no such file")
    return path or None


def _token(env: Mapping[str, str], dp_rank: int) -> str | None:
    token = env.get(ENV_PREFIX + "TOKEN", "").strip()
    path = env.get(ENV_PREFIX + "TOKEN_FILE", "").strip()
    if token and path:
        raise ConfigError(f"set {ENV_PREFIX}TOKEN or {ENV_PREFIX}TOKEN_FILE, not both")
    if path:
        resolved = path.replace("{dp_rank}", str(dp_rank))
        try:
            token = Path(resolved).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{ENV_PREFIX}TOKEN_FILE={path!r}: cannot read {resolved!r}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"{ENV_PREFIX}TOKEN_FILE={path!r}: {resolved!r} is empty")
    return token or None


def from_env(env: Mapping[str, str], dp_rank: int = 0) -> PluginConfig | None:
    """The validated config, or None when PREFIX_ROUTER_INGEST is unset (plugin off)."""
    target = env.get(ENV_PREFIX + "INGEST", "").strip()
    if not target:
        return None
    m = _HOST_PORT.match(target)
    if not m or not 0 < int(m.group(2)) <= 65535:
        raise ConfigError(f"{ENV_PREFIX}INGEST={target!r}: expected host:port, e.g. 10.0.0.5:9003")
    worker_id = _required(env, "WORKER_ID")
    ca = _file(env, "TLS_CA")
    cert, key = _file(env, "TLS_CERT"), _file(env, "TLS_KEY")
    if (cert is None) != (key is None):
        raise ConfigError(f"set both {ENV_PREFIX}TLS_CERT and {ENV_PREFIX}TLS_KEY, or neither")
    tls = TlsConfig(ca, cert, key) if (ca or cert or _bool(env, "TLS")) else None
    cfg = PluginConfig(
        target=target,
        worker_id=worker_id,
        model=_required(env, "MODEL"),
        token=_token(env, dp_rank),
        hash_seed=env.get(ENV_PREFIX + "HASH_SEED", "0"),
        block_size=_int(env, "BLOCK_SIZE", 16, 1, 4096),
        flush_ms=_int(env, "FLUSH_MS", 100, 1, 60_000),
        max_batch_events=_int(env, "MAX_BATCH_EVENTS", 1000, 1, 10_000),
        max_batch_keys=_int(env, "MAX_BATCH_KEYS", 100_000, 1, 500_000),
        queue_size=_opt_int(env, "QUEUE_SIZE", 1, 10_000_000),
        heartbeat_ms=_int(env, "HEARTBEAT_MS", 2000, 10, 600_000),
        rpc_timeout_ms=_int(env, "RPC_TIMEOUT_MS", 5000, 10, 600_000),
        backoff_ms=_int(env, "BACKOFF_MS", 100, 1, 600_000),
        backoff_max_ms=_int(env, "BACKOFF_MAX_MS", 5000, 1, 600_000),
        max_table_entries=_int(env, "MAX_TABLE_ENTRIES", 2_000_000, 1, 1_000_000_000),
        resync_page_keys=_int(env, "RESYNC_PAGE_KEYS", 65536, 1, 4_000_000),
        tls=tls,
        also_zmq=_bool(env, "ALSO_ZMQ"),
    )
    if cfg.backoff_max_ms < cfg.backoff_ms:
        raise ConfigError(f"{ENV_PREFIX}BACKOFF_MAX_MS={cfg.backoff_max_ms} is below {ENV_PREFIX}BACKOFF_MS={cfg.backoff_ms}")
    return cfg.for_rank(dp_rank)
