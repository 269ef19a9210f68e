"""gRPC client of prefix_router.ingest.v1.KvIngest with generic stubs (channel.unary_unary /
stream_unary and our own serializers): no grpc_tools-generated code, so any grpcio works.

Errors come out as TransportError with the gRPC status; `retryable` separates a router that is
down or busy (retry the same batch) from one that rejects us (UNAUTHENTICATED, PERMISSION_DENIED,
INVALID_ARGUMENT: our configuration disagrees with the router's).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import grpc

from . import wire
from .config import TlsConfig

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


class TransportError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


class Transport(Protocol):
    """What the pusher needs; tests substitute a fake."""

    def push(self, batch: Any) -> Any: ...

    def resync(self, pages: Iterator[Any]) -> Any: ...

    def close(self) -> None: ...


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


class GrpcTransport:
    def __init__(self, target: str, token: str | None, tls: TlsConfig | None, timeout_s: float, reconnect_max_ms: int) -> None:
        options = [
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            # grpc's default reconnect backoff grows to 120 s; a restarted router must be found fast.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", max(100, reconnect_max_ms)),
            # Ordering is ours to keep: no transparent retries behind our back.
            ("grpc.enable_retries", 0),
        ]
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, _credentials(tls), options=options)
        self._timeout_s = timeout_s
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._push = self._channel.unary_unary(wire.PUSH_METHOD, request_serializer=_serialize, response_deserializer=wire.PushReply.FromString)
        self._resync = self._channel.stream_unary(wire.RESYNC_METHOD, request_serializer=_serialize, response_deserializer=wire.ResyncReply.FromString)

    def push(self, batch: Any) -> Any:
        try:
            return self._push(batch, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    def resync(self, pages: Iterator[Any]) -> Any:
        try:
            return self._resync(pages, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    def close(self) -> None:
        self._channel.close()


def _error(exc: grpc.RpcError) -> TransportError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return TransportError(code or grpc.StatusCode.UNKNOWN, details or "")


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def _credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=_read(tls.ca_file), private_key=_read(tls.key_file), certificate_chain=_read(tls.cert_file))
