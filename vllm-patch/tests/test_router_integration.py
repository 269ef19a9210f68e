"""The publisher against the real TypeScript router (src/cli.ts serve), checked through the
router's admin API: /debug/lookup, /debug/workers, /debug/ingest."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from prefix_router_vllm.publisher import PrefixRouterPublisher
from router_process import TOKENS, RouterProcess, wait_until
from vllm_shapes import FakeEngine, batch, random_tokens, router_keys

RNG = random.Random(2024)
MakePublisher = Callable[..., PrefixRouterPublisher]


@pytest.fixture
def make_publisher(router: RouterProcess) -> Iterator[MakePublisher]:
    made: list[PrefixRouterPublisher] = []

    def make(**env: str) -> PrefixRouterPublisher:
        base = {
            "PREFIX_ROUTER_INGEST": router.ingest,
            "PREFIX_ROUTER_WORKER_ID": "w1",
            "PREFIX_ROUTER_MODEL": "qwen3",
            "PREFIX_ROUTER_TOKEN": TOKENS["w1"],
            "PREFIX_ROUTER_FLUSH_MS": "50",
            "PREFIX_ROUTER_HEARTBEAT_MS": "300",
            "PREFIX_ROUTER_BACKOFF_MAX_MS": "300",
            "PREFIX_ROUTER_RPC_TIMEOUT_MS": "2000",
        }
        pub = PrefixRouterPublisher(data_parallel_rank=0, env={**base, **env})
        made.append(pub)
        return pub

    yield make
    for pub in made:
        pub.shutdown()


def blocks(router: RouterProcess, worker: str = "w1") -> int:
    return int(router.workers()[worker]["blocks"])


def reporting(router: RouterProcess, worker: str = "w1") -> dict[str, Any]:
    return router.workers()[worker]["reporting"] or {}


def holds_exactly(router: RouterProcess, chains: list[list[str]], distinct: int) -> bool:
    return blocks(router) == distinct and all(router.lookup(c) == len(c) for c in chains)


def local_view(pub: PrefixRouterPublisher) -> set[str]:
    """The keys the publisher holds; read from this thread, so retried if it changes meanwhile."""
    assert pub._pusher is not None
    translator = pub._pusher.translator

    def read() -> tuple[set[str]]:  # a 1-tuple is truthy even for an empty view
        return ({k.hex() for k in translator.live_keys()},)

    view: set[str] = wait_until(read, what="a stable local view")[0]
    return view


def test_events_become_router_keys_and_removals_apply(router: RouterProcess, make_publisher: MakePublisher) -> None:
    """(b) The router holds exactly the router keys of the stored token ids; removals and
    AllBlocksCleared apply."""
    pub, engine = make_publisher(), FakeEngine()
    a = random_tokens(16 * 5 + 7, RNG)
    b = a[: 16 * 2] + random_tokens(16 * 3, RNG)  # shares a's first two blocks
    c = random_tokens(16 * 2, RNG)
    pub.publish(batch(engine.store(a)))
    pub.publish(batch(engine.store(b), engine.store(c, lora_name="sql-adapter", lora_id=1)))
    ka, kb, kc = router_keys(a), router_keys(b), router_keys(c, lora="sql-adapter")
    wait_until(lambda: holds_exactly(router, [ka, kb, kc], len(set(ka + kb + kc))), what="the stored keys")
    assert router.lookup(router_keys(c)) == 0  # the adapter's chain is not the base model's
    assert router.lookup(ka + ["00" * 8]) == 5

    # Evict a's last two blocks: a's run drops to 3; b (sharing blocks 0-1) is untouched.
    pub.publish(batch(engine.evict(engine.hashes(a)[3:])))
    wait_until(lambda: router.lookup(ka) == 3 and blocks(router) == len(set(ka[:3] + kb + kc)), what="the removal")
    assert router.lookup(kb) == 5

    pub.publish(batch(engine.clear()))
    wait_until(lambda: blocks(router) == 0, what="AllBlocksCleared")
    assert router.lookup(ka) == router.lookup(kb) == router.lookup(kc) == 0
    state = reporting(router)
    assert state["epoch"] == pub.epoch and not state["needsResync"] and state["gaps"] == 0
    assert state["appliedSeq"] == pub.stats()["last_seq"]


def test_shutdown_withdraws_the_workers_keys(router: RouterProcess, make_publisher: MakePublisher) -> None:
    pub, engine = make_publisher(), FakeEngine()
    tokens = random_tokens(16 * 3, RNG)
    pub.publish(batch(engine.store(tokens)))
    wait_until(lambda: router.lookup(router_keys(tokens)) == 3, what="the stored keys")
    pub.shutdown()
    assert blocks(router) == 0 and router.lookup(router_keys(tokens)) == 0


def test_events_arrive_in_batches_at_the_flush_interval(router: RouterProcess, make_publisher: MakePublisher) -> None:
    """(c) 50 engine steps over 1 s with flush 100 ms reach the router as ~10 batches."""
    pub, engine = make_publisher(PREFIX_ROUTER_FLUSH_MS="100"), FakeEngine()
    wait_until(lambda: router.counters()["batches"] >= 1, what="the opening batch")
    before = router.counters()
    chains = []
    start = time.monotonic()
    for i in range(50):
        tokens = random_tokens(16 * 2, RNG)
        chains.append(router_keys(tokens))
        pub.publish(batch(engine.store(tokens)))
        time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
    wait_until(lambda: all(router.lookup(c) == 2 for c in chains), what="all 50 steps' keys")
    after = router.counters()
    batches = after["batches"] - before["batches"]
    assert 6 <= batches <= 16, f"{batches} batches for 50 steps over 1 s"
    assert after["events"] - before["events"] == 50 and after["keys"] - before["keys"] == 100


def test_router_restart_is_followed_by_a_resync(router: RouterProcess, make_publisher: MakePublisher) -> None:
    """(d) A fresh router on the same ports answers RESYNC_REQUIRED; the resync restores the
    worker's entries, and batches go on afterwards."""
    pub, engine = make_publisher(), FakeEngine()
    prompts = [random_tokens(16 * 4, RNG) for _ in range(3)]
    for p in prompts:
        pub.publish(batch(engine.store(p)))
    chains = [router_keys(p) for p in prompts]
    wait_until(lambda: holds_exactly(router, chains, 12), what="the keys before the restart")
    seq = pub.stats()["last_seq"]
    assert seq >= 2

    router.kill()
    router.start()
    assert blocks(router) == 0  # a fresh router knows nothing
    wait_until(lambda: holds_exactly(router, chains, 12), timeout=20, what="the resync after the restart")
    counters, state = router.counters(), reporting(router)
    assert counters["resyncRequests"] >= 1 and counters["resyncs"] >= 1
    assert state["epoch"] == pub.epoch and state["resyncs"] >= 1 and state["appliedSeq"] == pub.stats()["last_seq"] > seq
    assert pub.stats()["resync_required"] >= 1 and pub.stats()["resyncs"] >= 1

    more = random_tokens(16 * 2, RNG)
    pub.publish(batch(engine.store(more)))
    wait_until(lambda: router.lookup(router_keys(more)) == 2, what="a batch after the resync")
    assert reporting(router)["appliedSeq"] == pub.stats()["last_seq"] and not reporting(router)["needsResync"]


def test_queue_overflow_is_a_gap_healed_by_a_resync(router: RouterProcess, make_publisher: MakePublisher) -> None:
    """(e) A full queue drops engine steps (a gap); the resync makes the router's view equal the
    worker's local view again, and batches go on afterwards."""
    pub, engine = make_publisher(PREFIX_ROUTER_QUEUE_SIZE="4"), FakeEngine()
    chains: list[list[int]] = [random_tokens(16 * 2, RNG) for _ in range(5)]
    for tokens in chains:
        pub.publish(batch(engine.store(tokens)))
        time.sleep(0.02)  # the queue holds only 4 steps
    wait_until(lambda: all(router.lookup(router_keys(c)) == 2 for c in chains), what="the keys before the burst")

    assert pub._pusher is not None
    ingest, slow = pub._pusher.ingest, [True]

    def slow_ingest(events: Any, now: float) -> None:  # a consumer slower than the engine
        if slow[0]:
            time.sleep(0.01)
        ingest(events, now)

    pub._pusher.ingest = slow_ingest  # type: ignore[assignment]
    for i in range(150):
        if i % 3 == 0:  # continue an earlier chain: its parent's step may have been dropped
            tokens = chains[RNG.randrange(len(chains))] + random_tokens(16, RNG)
        else:
            tokens = random_tokens(16 * 2, RNG)
        chains.append(tokens)
        event = engine.try_store(tokens)
        if event is not None:
            pub.publish(batch(event))
        if i % 10 == 9:  # evictions, some of which are dropped too
            held = [h for h in engine.hashes(chains[RNG.randrange(len(chains))]) if h in engine.cached]
            if held:
                pub.publish(batch(engine.evict(held[-1:])))
        time.sleep(0.002)
    slow[0] = False
    stats = pub.stats()
    assert stats["dropped_steps"] > 0
    wait_until(lambda: pub.stats()["resyncs"] >= 1 and pub.stats()["queued"] == 0, what="the resync after the gap")
    stats = pub.stats()
    assert stats["translator"]["unknown_parent"] > 0, stats  # children of dropped steps were skipped
    view = local_view(pub)
    wait_until(lambda: blocks(router) == len(view), what="router blocks == local view")
    assert all(router.lookup([k]) == 1 for k in view)
    assert router.counters()["resyncs"] >= 1 and reporting(router)["resyncs"] >= 1
    assert stats["resyncs"] <= 5  # rate-limited, not one per dropped step

    more = random_tokens(16 * 3, RNG)
    pub.publish(batch(engine.store(more)))
    wait_until(lambda: router.lookup(router_keys(more)) == 3, what="a batch after the resync")
    assert blocks(router) == len(view) + 3
    assert reporting(router)["appliedSeq"] == pub.stats()["last_seq"] and not reporting(router)["needsResync"]


@pytest.mark.parametrize(
    ("env", "code", "counter"),
    [
        ({"PREFIX_ROUTER_TOKEN": "not-a-token-of-anyone"}, "UNAUTHENTICATED", "unauthenticated"),
        ({"PREFIX_ROUTER_TOKEN": TOKENS["w2"]}, "PERMISSION_DENIED", "permission-denied"),
        ({"PREFIX_ROUTER_BLOCK_SIZE": "32"}, "INVALID_ARGUMENT", "invalid-argument"),
        ({"PREFIX_ROUTER_MODEL": "llama3"}, "INVALID_ARGUMENT", "invalid-argument"),
    ],
    ids=["wrong token", "another worker's token", "block size mismatch", "unknown model"],
)
def test_rejections(router: RouterProcess, make_publisher: MakePublisher, env: dict[str, str], code: str, counter: str) -> None:
    """(f) The router rejects a bad token, another worker's token and a block size mismatch; the
    publisher counts the status and applies nothing."""
    pub = make_publisher(**env)
    pub.publish(batch(FakeEngine(block_size=int(env.get("PREFIX_ROUTER_BLOCK_SIZE", "16"))).store(random_tokens(64, RNG))))
    wait_until(lambda: router.counters()["rejections"][counter] >= 1, what=f"a {counter} rejection")
    wait_until(lambda: pub.stats()["rpc_errors"].get(code, 0) >= 1, what=f"{code} at the publisher")
    assert router.counters()["batches"] == 0 and blocks(router) == 0 and reporting(router) == {}
