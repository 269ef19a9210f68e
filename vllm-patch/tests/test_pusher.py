"""Pusher: sequencing, batching, retries, heartbeats and resyncs with a scripted transport and a
fake clock (the protocol of proto/prefix_router/ingest/v1/ingest.proto, no router needed)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from prefix_router_vllm import wire
from prefix_router_vllm.config import PluginConfig
from prefix_router_vllm.pusher import REJECTED_RETRY_S, Pusher
from prefix_router_vllm.transport import TransportError
from vllm_shapes import FakeEngine, random_tokens, router_keys

RNG = random.Random(11)
APPLIED, DUPLICATE, RESYNC = wire.STATUS_APPLIED, wire.STATUS_DUPLICATE, wire.STATUS_RESYNC_REQUIRED


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeTransport:
    """Answers APPLIED (or what `answer` says) and records every message."""

    def __init__(self) -> None:
        self.pushes: list[Any] = []
        self.resyncs: list[list[Any]] = []
        self.answer: Callable[[Any], int | TransportError] = lambda batch: APPLIED

    def push(self, batch: Any) -> Any:
        self.pushes.append(batch)
        out = self.answer(batch)
        if isinstance(out, TransportError):
            raise out
        return wire.PushReply(status=out, applied_seq=batch.seq)

    def resync(self, pages: Iterator[Any]) -> Any:
        sent = list(pages)
        self.resyncs.append(sent)
        return wire.ResyncReply(keys=sum(len(p.keys) // 8 for p in sent), applied_seq=sent[0].seq)

    def close(self) -> None:
        pass


def config(**over: Any) -> PluginConfig:
    base: dict[str, Any] = dict(target="127.0.0.1:1", worker_id="w1", model="qwen3", token="t", flush_ms=100, heartbeat_ms=1000, backoff_ms=100, backoff_max_ms=1000, resync_page_keys=4)
    return PluginConfig(**{**base, **over})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


def make(clock: Clock, transport: FakeTransport, **over: Any) -> Pusher:
    return Pusher(config(**over), transport, "epoch-1", clock=clock, rng=lambda: 1.0)


def seqs(transport: FakeTransport) -> list[tuple[int, int]]:
    return [(b.seq, len(b.events)) for b in transport.pushes]


def store(p: Pusher, engine: FakeEngine, clock: Clock, blocks: int = 1) -> list[str]:
    tokens = random_tokens(16 * blocks, RNG)
    p.ingest([engine.store(tokens)], clock.now)
    return router_keys(tokens)


def test_opening_batch_then_one_batch_per_flush_interval(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    assert seqs(transport) == [(1, 0)]  # the epoch opens at once, with no events
    for _ in range(5):
        store(p, engine, clock)
        clock.now += 0.03
        p.tick(clock.now)
    # First op at t=0, flushed once 100 ms had passed (t=0.12); the rest wait for their own 100 ms.
    assert seqs(transport) == [(1, 0), (2, 4)]
    clock.now += 0.1
    p.tick(clock.now)
    assert seqs(transport) == [(1, 0), (2, 4), (3, 1)]
    b = transport.pushes[1]
    assert (b.worker_id, b.model, b.epoch, b.block_size, b.lora) == ("w1", "qwen3", "epoch-1", 16, "")


def test_full_batch_goes_out_without_waiting(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport, max_batch_events=3), FakeEngine()
    p.tick(clock.now)
    for _ in range(7):
        store(p, engine, clock)
    p.tick(clock.now)
    assert seqs(transport) == [(1, 0), (2, 3), (3, 3)]
    clock.now += 0.1
    p.tick(clock.now)
    assert seqs(transport)[-1] == (4, 1)


def test_adjacent_removals_merge(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    toks = [random_tokens(16, RNG) for _ in range(3)]
    events = [engine.store(t) for t in toks]
    p.ingest(events, clock.now)
    p.ingest([engine.evict(e.block_hashes) for e in events], clock.now)
    clock.now += 0.2
    p.tick(clock.now)
    kinds = [e.WhichOneof("kind") for e in transport.pushes[-1].events]
    assert kinds == ["stored", "stored", "stored", "removed"]
    assert len(transport.pushes[-1].events[-1].removed.keys) == 3 * 8


def test_a_failed_batch_is_retried_with_the_same_seq_and_backoff(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    down = TransportError(grpc.StatusCode.UNAVAILABLE, "connection refused")
    transport.answer = lambda b: down
    store(p, engine, clock)
    clock.now += 0.1
    p.tick(clock.now)
    delays = []
    for _ in range(5):
        due = p.next_deadline(clock.now)
        delays.append(round(due - clock.now, 3))
        store(p, engine, clock)  # more events wait behind the unacknowledged batch
        clock.now = due
        p.tick(clock.now)
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0]  # doubling, capped at backoff_max_ms
    assert {b.seq for b in transport.pushes[1:]} == {2} and len(transport.pushes[-1].events) == 1
    transport.answer = lambda b: APPLIED
    clock.now = p.next_deadline(clock.now)
    p.tick(clock.now)
    assert seqs(transport)[-2:] == [(2, 1), (3, 5)]
    assert p.stats.rpc_errors == {"UNAVAILABLE": 6}


def test_duplicate_reply_acknowledges(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    transport.answer = lambda b: DUPLICATE
    store(p, engine, clock)
    clock.now += 0.1
    p.tick(clock.now)
    assert p.stats.duplicates == 1 and p.next_deadline(clock.now) > clock.now


def test_heartbeat_repeats_the_last_seq_when_idle(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    store(p, engine, clock)
    clock.now += 0.1
    p.tick(clock.now)
    assert p.next_deadline(clock.now) == pytest.approx(clock.now + 1.0)
    clock.now += 1.0
    p.tick(clock.now)
    assert seqs(transport) == [(1, 0), (2, 1), (2, 0)] and p.stats.heartbeats == 1


def test_resync_required_sends_the_live_view_in_pages(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    keys = store(p, engine, clock, blocks=6)
    clock.now += 0.1
    p.tick(clock.now)
    transport.answer = lambda b: RESYNC
    keys += store(p, engine, clock, blocks=3)
    clock.now += 0.1
    p.tick(clock.now)
    (pages,) = transport.resyncs
    # Batch 3 was refused: the snapshot includes its ops and takes seq 4 of its own.
    assert [(pg.seq, len(pg.keys) // 8, pg.last) for pg in pages] == [(4, 4, False), (4, 4, False), (4, 1, True)]
    assert {pg.keys[i : i + 8].hex() for pg in pages for i in range(0, len(pg.keys), 8)} == set(keys)
    assert {(pg.worker_id, pg.model, pg.epoch, pg.block_size) for pg in pages} == {("w1", "qwen3", "epoch-1", 16)}
    transport.answer = lambda b: APPLIED
    store(p, engine, clock)
    clock.now += 0.1
    p.tick(clock.now)
    assert seqs(transport)[-1] == (5, 1)  # batches go on at the resync's seq + 1


def test_empty_view_resyncs_with_one_last_page(clock: Clock, transport: FakeTransport) -> None:
    p = make(clock, transport)
    transport.answer = lambda b: RESYNC
    p.tick(clock.now)
    (pages,) = transport.resyncs
    assert [(pg.seq, pg.keys, pg.last) for pg in pages] == [(2, b"", True)]


def test_a_rejection_waits_and_then_resyncs(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    transport.answer = lambda b: TransportError(grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token")
    p.tick(clock.now)
    assert p.next_deadline(clock.now) == pytest.approx(clock.now + REJECTED_RETRY_S)
    keys = store(p, engine, clock, blocks=2)
    transport.answer = lambda b: APPLIED
    clock.now += REJECTED_RETRY_S
    p.tick(clock.now)
    (pages,) = transport.resyncs
    assert {pages[0].keys[:8].hex(), pages[0].keys[8:16].hex()} == set(keys) and pages[0].seq == 2


def test_a_queue_gap_triggers_a_resync(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    keys = store(p, engine, clock)
    p.mark_gap("test")
    p.tick(clock.now)
    assert len(transport.resyncs) == 1 and transport.resyncs[0][0].keys.hex() == keys[0]
    assert p.stats.gaps == 1
    # The snapshot took seq 2, so no heartbeat repeats seq 1 (which a restarted router would take
    # for the first batch of the epoch, i.e. for "nothing held").
    clock.now += 1.0
    p.tick(clock.now)
    assert transport.resyncs[0][0].seq == 2 and seqs(transport)[-1] == (2, 0)


def test_too_many_ops_behind_a_stuck_batch_become_a_resync(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport, max_batch_events=2), FakeEngine()
    p.tick(clock.now)
    transport.answer = lambda b: TransportError(grpc.StatusCode.DEADLINE_EXCEEDED, "slow")
    keys = [k for _ in range(25) for k in store(p, engine, clock)]
    assert p.stats.pending_dropped == 1
    transport.answer = lambda b: APPLIED
    clock.now += 10
    p.tick(clock.now)
    (pages,) = transport.resyncs
    assert sum(len(pg.keys) // 8 for pg in pages) == len(keys)


def test_farewell_withdraws_every_key(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    store(p, engine, clock)
    clock.now += 0.1
    p.tick(clock.now)
    p.farewell()
    (pages,) = transport.resyncs
    assert [(pg.seq, pg.keys, pg.last) for pg in pages] == [(3, b"", True)]


def test_resyncs_are_rate_limited(clock: Clock, transport: FakeTransport) -> None:
    p, engine = make(clock, transport), FakeEngine()
    p.tick(clock.now)
    p.mark_gap("first")
    p.tick(clock.now)
    store(p, engine, clock)
    p.mark_gap("second, right after")
    clock.now += 0.5
    p.tick(clock.now)
    assert len(transport.resyncs) == 1
    assert p.next_deadline(clock.now) == pytest.approx(clock.now + 0.5)
    clock.now += 0.5
    p.tick(clock.now)
    assert len(transport.resyncs) == 2 and len(transport.resyncs[1][0].keys) == 8
