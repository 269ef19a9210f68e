"""Pusher: one worker's ordered, batched, retried delivery of ingest ops to the router.

Single-threaded by design — the publisher's background thread owns it — and free of threads,
sleeps and sockets itself (clock, randomness and transport are injected), so tests drive it step
by step. The protocol (proto/prefix_router/ingest/v1/ingest.proto, src/ingest/worker-sequencer.ts):

- A new epoch per publisher (engine start). Its first batch, seq 1, carries no events: it opens
  the epoch on the router at once (dropping the previous epoch's entries), and it makes seq 1 mean
  "nothing" so that a heartbeat at seq 1 after a router restart is never mistaken for history.
- Every further batch with events takes seq + 1. A batch is cut `flush_ms` after its first op, or
  as soon as it holds `max_batch_events` ops / `max_batch_keys` keys. The cut batch is retried
  with the same seq (exponential backoff with jitter, capped) until the router answers; while it
  waits, new ops accumulate behind it, up to 10 batches' worth (then they are dropped and a resync
  is scheduled: the translator's live view still has their effects).
- Idle: a heartbeat (no events, seq = last seq) every `heartbeat_ms` keeps the worker live.
- RESYNC_REQUIRED, a rejected call, an overflow or a queue gap: send the translator's whole live
  key set in pages. The snapshot includes the effects of every op translated so far, so pending
  ops and an unacknowledged batch are superseded. It takes a seq of its own (last + 1), as if it
  were the batch of those ops, so the state at seq 1 is always empty: a restarted router that
  takes a heartbeat at seq 1 for a first batch loses nothing, and at any later seq it asks for a
  resync. Batches go on at its seq + 1. At most one resync a second (MIN_RESYNC_INTERVAL_S).
- Rejections (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT) are configuration errors:
  logged, retried at most every 30 s, and followed by a resync once accepted.
- Shutdown: an empty resync withdraws the worker's keys (its cache dies with the engine).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .config import PluginConfig
from .ops import Op
from .translator import KeyTranslator
from .transport import Transport, TransportError

# A child of vLLM's logger, so our lines land in vLLM's log stream with its format.
log = logging.getLogger("vllm.prefix_router")

REJECTED_RETRY_S = 30.0
PENDING_BATCHES = 10
# A resync replaces the worker's whole key set on the router: under sustained overload (a gap
# every few steps) do it at most this often; ops meanwhile are covered by the next snapshot.
MIN_RESYNC_INTERVAL_S = 1.0


@dataclass
class PusherStats:
    batches: int = 0  # batches the router applied (the opening batch included)
    events: int = 0
    keys: int = 0
    duplicates: int = 0
    heartbeats: int = 0
    resync_required: int = 0
    resyncs: int = 0
    resync_keys: int = 0
    gaps: int = 0
    pending_dropped: int = 0
    failures: int = 0
    rpc_errors: dict[str, int] = field(default_factory=dict)
    last_error: str = ""
    router_applied_seq: int = 0


class Pusher:
    def __init__(
        self,
        cfg: PluginConfig,
        transport: Transport,
        epoch: str,
        translator: KeyTranslator | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.cfg = cfg
        self.translator = translator or KeyTranslator(cfg.hash_seed, cfg.model, cfg.block_size, cfg.max_table_entries)
        self.ident = wire.Identity(cfg.worker_id, cfg.model, epoch, cfg.block_size)
        self.stats = PusherStats()
        self._transport, self._clock, self._wall_ms, self._rng = transport, clock, wall_ms, rng
        self._pending: list[Op] = []
        self._pending_keys = 0
        self._pending_since: float | None = None
        self._last_seq = 1
        self._inflight: tuple[int, list[Op]] | None = (1, [])  # the opening batch
        self._need_resync = False
        self._retry_at = 0.0
        self._failures = 0
        self._last_contact = clock()
        self._last_resync = -MIN_RESYNC_INTERVAL_S

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def ingest(self, events: Iterable[Any], now: float) -> None:
        """Translates one vLLM KVEventBatch's events and queues their ops for the next batch."""
        for op in self.translator.translate(events):
            self._add(op, now)

    def mark_gap(self, reason: str) -> None:
        """Events were lost before translation (queue overflow): the router needs a full view."""
        self.stats.gaps += 1
        if not self._need_resync:
            log.warning("prefix-router: %s; a resync will follow", reason)
        self._schedule_resync()

    def next_deadline(self, now: float) -> float:
        """When tick() next has something to do (a retry, a flush, a heartbeat)."""
        if self._retry_at > now:
            return self._retry_at
        if self._need_resync:
            return max(now, self._last_resync + MIN_RESYNC_INTERVAL_S)
        if self._inflight is not None or self._batch_full():
            return now
        due = self._last_contact + self.cfg.heartbeat_ms / 1000
        if self._pending_since is not None:
            due = min(due, self._pending_since + self.cfg.flush_ms / 1000)
        return due

    def tick(self, now: float) -> None:
        """Does whatever is due: a retry, a resync, a batch, a heartbeat — until nothing is."""
        while self._step(now):
            now = self._clock()

    def farewell(self) -> None:
        """At engine shutdown: the cache is gone, so tell the router at once (one try, no retry)
        with an empty Resync — valid in any state — rather than leave the worker's entries to
        the liveness timeout."""
        self._last_seq += 1
        try:
            self._transport.resync(wire.resync_pages(self.ident, self._last_seq, [], self.cfg.resync_page_keys))
        except TransportError as exc:
            log.info("prefix-router: could not withdraw worker %s at shutdown (%s)", self.ident.worker_id, exc)

    def _step(self, now: float) -> bool:
        if now < self._retry_at:
            return False
        if self._need_resync:
            return now >= self._last_resync + MIN_RESYNC_INTERVAL_S and self._resync(now)
        if self._inflight is None and self._batch_due(now):
            self._inflight = self._cut(now)
        if self._inflight is not None:
            return self._send(self._inflight, now)
        if now - self._last_contact >= self.cfg.heartbeat_ms / 1000:
            return self._send((self._last_seq, []), now, heartbeat=True)
        return False

    def _add(self, op: Op, now: float) -> None:
        if self._need_resync:
            return  # the coming resync's snapshot includes this op's effect
        last = self._pending[-1] if self._pending else None
        if op.kind == "removed" and last is not None and last.kind == "removed":
            last.keys += op.keys  # adjacent removals travel as one event
        else:
            self._pending.append(op)
        self._pending_keys += op.key_count
        if self._pending_since is None:
            self._pending_since = now
        if len(self._pending) > PENDING_BATCHES * self.cfg.max_batch_events or self._pending_keys > PENDING_BATCHES * self.cfg.max_batch_keys:
            self.stats.pending_dropped += 1
            log.warning("prefix-router: %d ops wait behind an unacknowledged batch; dropping them for a resync", len(self._pending))
            self._schedule_resync()

    def _schedule_resync(self) -> None:
        self._need_resync = True
        self._pending.clear()
        self._pending_keys = 0
        self._pending_since = None

    def _batch_full(self) -> bool:
        return len(self._pending) >= self.cfg.max_batch_events or self._pending_keys >= self.cfg.max_batch_keys

    def _batch_due(self, now: float) -> bool:
        if self._pending_since is None:
            return False
        return self._batch_full() or now - self._pending_since >= self.cfg.flush_ms / 1000

    def _cut(self, now: float) -> tuple[int, list[Op]]:
        take, keys = 0, 0
        while take < len(self._pending) and take < self.cfg.max_batch_events:
            n = self._pending[take].key_count
            if take > 0 and keys + n > self.cfg.max_batch_keys:
                break
            take, keys = take + 1, keys + n
        ops, self._pending = self._pending[:take], self._pending[take:]
        self._pending_keys -= keys
        if not self._pending:
            self._pending_since = None  # a remainder keeps its age: it goes out right behind
        self._last_seq += 1
        return self._last_seq, ops

    def _send(self, batch: tuple[int, list[Op]], now: float, heartbeat: bool = False) -> bool:
        seq, ops = batch
        try:
            reply = self._transport.push(wire.event_batch(self.ident, seq, ops, self._wall_ms()))
        except TransportError as exc:
            self._failed(exc, now, "Push")
            return False
        self._succeeded(now)
        self.stats.router_applied_seq = int(reply.applied_seq)
        if reply.status == wire.STATUS_RESYNC_REQUIRED:
            self.stats.resync_required += 1
            log.info("prefix-router: router asks for a resync (%s) at seq %d", reply.message, seq)
            self._schedule_resync()
            return True
        if heartbeat:
            self.stats.heartbeats += 1
            return True
        self._inflight = None
        if reply.status == wire.STATUS_APPLIED:
            self.stats.batches += 1
            self.stats.events += len(ops)
            self.stats.keys += sum(op.key_count for op in ops)
        else:
            self.stats.duplicates += 1
        return True

    def _resync(self, now: float) -> bool:
        self._inflight = None  # superseded: the snapshot includes its effects
        self._last_resync = now
        self._last_seq += 1
        keys = self.translator.live_keys()
        try:
            reply = self._transport.resync(wire.resync_pages(self.ident, self._last_seq, keys, self.cfg.resync_page_keys))
        except TransportError as exc:
            self._failed(exc, now, "Resync")
            return False
        self._succeeded(now)
        self._need_resync = False
        self.stats.resyncs += 1
        self.stats.resync_keys += len(keys)
        self.stats.router_applied_seq = int(reply.applied_seq)
        log.info("prefix-router: resynced %d keys at seq %d", len(keys), self._last_seq)
        return True

    def _failed(self, exc: TransportError, now: float, call: str) -> None:
        self._failures += 1
        self.stats.failures += 1
        self.stats.rpc_errors[exc.code.name] = self.stats.rpc_errors.get(exc.code.name, 0) + 1
        self.stats.last_error = f"{call}: {exc}"
        if exc.retryable:
            base = min(self.cfg.backoff_max_ms, self.cfg.backoff_ms * 2 ** min(self._failures - 1, 30)) / 1000
            delay = base * (0.5 + self._rng() / 2)
            if self._failures == 1:
                log.warning("prefix-router: %s to %s failed (%s); retrying with backoff", call, self.cfg.target, exc)
        else:
            delay = max(self.cfg.backoff_max_ms / 1000, REJECTED_RETRY_S)
            log.error("prefix-router: the router rejected %s for worker %s: %s; retrying in %.0f s", call, self.ident.worker_id, exc, delay)
            self._schedule_resync()  # once accepted, send the whole view
        self._retry_at = now + delay

    def _succeeded(self, now: float) -> None:
        if self._failures:
            log.info("prefix-router: router reachable again after %d failed calls", self._failures)
        self._failures = 0
        self._retry_at = 0.0
        self._last_contact = now
