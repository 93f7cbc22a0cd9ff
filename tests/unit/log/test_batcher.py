"""pack and the coalescing IngestBatcher, against a fake SendMessageBatch."""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
from collections.abc import Callable

import orjson
import pytest

from services.cli.synthetic import EventGenerator
from services.core.errors import Unavailable
from services.core.logs import envelope
from services.log import batcher as batcher_mod
from services.log.batcher import IngestBatcher, PartlyQueued, pack
from tests.support.fakes import WatchedSemaphore

OVERHEAD = batcher_mod._ENVELOPE_OVERHEAD


def ev(name: str, pad: int = 0) -> bytes:
    return orjson.dumps({"id": name, "message": "x" * pad})


_NOISE = random.Random(7)


def noisy(name: str, pad: int) -> bytes:
    """An event that does not compress, so its message is as large as its JSON."""
    text = base64.b64encode(_NOISE.randbytes(pad)).decode()[:pad]
    return orjson.dumps({"id": name, "message": text})


def typical(n: int, prefix: str = "", seed: int = 1) -> list[bytes]:
    """Events like the benchmark's (~260 bytes of JSON each, ~5x smaller with zstd)."""
    rng = random.Random(seed)
    return [
        orjson.dumps({"id": f"{prefix}{i}-{rng.getrandbits(64):016x}", **event})
        for i, event in enumerate(EventGenerator(seed=seed).batch(n))
    ]


def decode(body: str) -> tuple[str, list[str]]:
    tenant_id, events = envelope.decode(body)
    return tenant_id, [e["id"] for e in events]


class FakeSender:
    """Records every SendMessageBatch; ``decide(call_no, body) -> bool`` per entry."""

    def __init__(
        self,
        decide: Callable[[int, str], bool] | None = None,
        raises: Exception | None = None,
    ) -> None:
        self.calls: list[list[str]] = []
        self.decide = decide
        self.raises = raises

    async def __call__(self, bodies: list[str]) -> list[bool]:
        call_no = len(self.calls)
        self.calls.append(list(bodies))
        await asyncio.sleep(0)
        if self.raises is not None:
            raise self.raises
        return [self.decide(call_no, b) if self.decide else True for b in bodies]

    def messages(self) -> list[tuple[str, list[str]]]:
        return [decode(b) for call in self.calls for b in call]


@pytest.fixture
def fast_backoff(monkeypatch):
    """Record the batcher's sleeps; retry backoffs (≥ 50 ms) don't really wait."""
    real_sleep = asyncio.sleep
    delays: list[float] = []

    async def sleep(delay, result=None):
        delays.append(delay)
        await real_sleep(0 if delay >= 0.05 else delay)
        return result

    monkeypatch.setattr(batcher_mod.asyncio, "sleep", sleep)
    return delays


async def started(sender: FakeSender, **kw) -> IngestBatcher:
    kw.setdefault("linger", 0.001)
    b = IngestBatcher(sender, **kw)
    b.start()
    return b


# --- pack ------------------------------------------------------------


def test_pack_respects_max_bytes_and_keeps_order():
    events = [ev(f"e{i}", pad=i * 7 % 50) for i in range(40)]
    groups = pack(events, 300)
    assert len(groups) > 1
    assert [e for g in groups for e in g] == events
    for g in groups:
        assert g
        assert OVERHEAD + sum(len(e) + 1 for e in g) <= 300
    # greedy: no group could have taken the first event of the next one
    for g, nxt in itertools.pairwise(groups):
        assert OVERHEAD + sum(len(e) + 1 for e in g) + len(nxt[0]) + 1 > 300


def test_pack_single_group_when_it_fits():
    events = [ev("a"), ev("b")]
    assert pack(events, 10_000) == [events]


def test_pack_oversize_event_alone():
    big = ev("big", pad=500)
    groups = pack([ev("a"), big, ev("b")], 200)
    assert groups == [[ev("a")], [big], [ev("b")]]


# --- coalescing ---------------------------------------------------------------------


async def test_concurrent_submits_of_one_tenant_share_one_message():
    sender = FakeSender()
    b = await started(sender)
    try:
        await asyncio.gather(*(b.submit("acme", [ev(f"r{i}a"), ev(f"r{i}b")]) for i in range(5)))
    finally:
        await b.close()
    assert len(sender.calls) == 1
    assert len(sender.calls[0]) == 1
    tenant, ids = decode(sender.calls[0][0])
    assert tenant == "acme"
    assert ids == [f"r{i}{s}" for i in range(5) for s in "ab"]


async def test_different_tenants_get_different_messages_in_one_batch():
    sender = FakeSender()
    b = await started(sender)
    try:
        await asyncio.gather(
            b.submit("a", [ev("a1")]), b.submit("b", [ev("b1")]), b.submit("a", [ev("a2")])
        )
    finally:
        await b.close()
    assert len(sender.calls) == 1
    assert sorted(decode(body) for body in sender.calls[0]) == [("a", ["a1", "a2"]), ("b", ["b1"])]


async def test_more_than_ten_messages_split_into_batches():
    sender = FakeSender()
    b = await started(sender)
    try:
        await asyncio.gather(*(b.submit(f"t{i}", [ev(f"e{i}")]) for i in range(23)))
    finally:
        await b.close()
    assert sorted(len(c) for c in sender.calls) == [3, 10, 10]
    got = sorted(sender.messages())
    assert got == sorted((f"t{i}", [f"e{i}"]) for i in range(23))


async def test_requests_of_one_tenant_split_at_message_size_without_splitting_a_request():
    sender = FakeSender()
    b = await started(sender, max_message_bytes=300)
    reqs = [[noisy(f"r{i}-{j}", 20) for j in range(3)] for i in range(6)]
    assert len(pack(reqs[0], 300)) == 1  # each request alone fits one message
    try:
        await asyncio.gather(*(b.submit("acme", r) for r in reqs))
    finally:
        await b.close()
    messages = sender.messages()
    assert len(messages) > 1
    flat = [i for _, ids in messages for i in ids]
    assert flat == [f"r{i}-{j}" for i in range(6) for j in range(3)]
    for _, ids in messages:
        assert len(ids) % 3 == 0  # whole requests only
    for body in (body for call in sender.calls for body in call):
        assert len(body.encode()) <= 300


async def test_batch_byte_limit_splits_batches():
    sender = FakeSender()
    b = await started(sender, max_message_bytes=300, max_batch_bytes=400)
    try:
        await asyncio.gather(*(b.submit(f"t{i}", [noisy(f"e{i}", 100)]) for i in range(6)))
    finally:
        await b.close()
    assert len(sender.calls) >= 3
    for call in sender.calls:
        assert sum(len(body) for body in call) <= 400
    assert sorted(sender.messages()) == sorted((f"t{i}", [f"e{i}"]) for i in range(6))


async def test_large_request_is_split_across_messages_and_sent_directly():
    sender = FakeSender()
    b = IngestBatcher(sender, linger=0.001, max_message_bytes=300)  # runner never started
    events = [noisy(f"e{i:02d}", 40) for i in range(20)]
    await b.submit("acme", events)  # returns without the runner: sent directly
    messages = sender.messages()
    assert len(messages) > 1
    assert all(t == "acme" for t, _ in messages)
    assert [i for _, ids in messages for i in ids] == [f"e{i:02d}" for i in range(20)]
    for call in sender.calls:
        assert len(call) <= 10
        for body in call:
            assert len(body.encode()) <= 300


async def test_large_request_batches_respect_max_batch_bytes():
    sender = FakeSender()
    b = IngestBatcher(sender, linger=0.001, max_message_bytes=300, max_batch_bytes=700)
    await b.submit("acme", [noisy(f"e{i:02d}", 100) for i in range(20)])
    assert len(sender.calls) > 1
    for call in sender.calls:
        assert sum(len(body.encode()) for body in call) <= 700


async def test_compressed_messages_are_batched_by_their_encoded_size(monkeypatch):
    monkeypatch.setattr(envelope, "ZSTD_FROM_BYTES", 0)  # zstd however small
    sender = FakeSender()
    b = await started(sender, max_message_bytes=300, max_batch_bytes=400)
    try:
        await asyncio.gather(*(b.submit(f"t{i}", [ev(f"e{i}", pad=200)]) for i in range(6)))
    finally:
        await b.close()
    # 6 messages of ~260 raw bytes need 4+ calls of <= 400 bytes; compressed (~95) 2.
    assert len(sender.calls) == 2
    for call in sender.calls:
        assert sum(len(body) for body in call) <= 400
        assert all(body.startswith('{"v":3,') for body in call)
    assert sorted(sender.messages()) == sorted((f"t{i}", [f"e{i}"]) for i in range(6))


async def test_zlib_compression_sends_v2_bodies_an_older_worker_reads():
    sender = FakeSender()
    b = await started(sender, compression="zlib")
    try:
        await b.submit("acme", [ev("a", pad=200), ev("b", pad=200)])
    finally:
        await b.close()
    assert sender.calls[0][0].startswith('{"v":2,')
    assert sender.messages() == [("acme", ["a", "b"])]


# --- packing by the compressed size ---------------------------------------------


def bodies(sender: FakeSender) -> list[str]:
    return [body for call in sender.calls for body in call]


def test_a_receive_of_the_largest_messages_fits_the_workers_default_budget():
    """What the worker takes at once (10 messages) is parsed within its default byte
    budget, and a message of ours is never refused as a zip bomb."""
    from services.worker.settings import WorkerSettings

    budget = WorkerSettings.model_fields["worker_max_batch_bytes"].default
    assert budget >= 10 * batcher_mod.MAX_MESSAGE_EVENT_BYTES
    assert batcher_mod.MAX_MESSAGE_EVENT_BYTES + 2 < envelope.MAX_INFLATED_BYTES


async def test_a_1000_event_bulk_of_typical_events_is_one_message():
    sender = FakeSender()
    b = await started(sender)
    events = typical(1000)
    assert sum(len(e) for e in events) > 240_000  # more JSON than one message holds
    try:
        await b.submit("acme", events)
    finally:
        await b.close()
    assert len(sender.calls) == 1 and len(sender.calls[0]) == 1
    assert len(sender.calls[0][0]) <= 240_000
    assert sender.messages() == [("acme", [orjson.loads(e)["id"] for e in events])]


async def test_concurrent_large_requests_share_one_send_message_batch():
    sender = FakeSender()
    b = await started(sender)
    requests = [typical(1000, prefix=f"r{r}-", seed=r) for r in range(3)]
    try:
        await asyncio.gather(*(b.submit(f"t{r}", events) for r, events in enumerate(requests)))
    finally:
        await b.close()
    assert len(sender.calls) == 1 and len(sender.calls[0]) == 3
    assert sum(len(body.encode()) for body in sender.calls[0]) <= 240_000
    assert sorted(sender.messages()) == [
        (f"t{r}", [orjson.loads(e)["id"] for e in events]) for r, events in enumerate(requests)
    ]


async def test_a_body_that_compresses_worse_than_expected_is_split_between_requests():
    sender = FakeSender()
    b = await started(sender, max_message_bytes=2000, max_batch_bytes=100_000)
    try:
        await b.submit("warm", [ev(f"w{i}", pad=400) for i in range(50)])
        assert b.ratio < 0.2  # what the next messages are sized by: ~10x more JSON
        sender.calls.clear()
        reqs = [[noisy(f"r{i}-{j}", 150) for j in range(3)] for i in range(12)]
        await asyncio.gather(*(b.submit("acme", r) for r in reqs))
    finally:
        await b.close()
    messages = sender.messages()
    assert len(messages) > 1
    assert [i for _, ids in messages for i in ids] == [
        f"r{i}-{j}" for i in range(12) for j in range(3)
    ]
    for _, ids in messages:
        assert len(ids) % 3 == 0 and len({i.split("-")[0] for i in ids}) == len(ids) // 3
    assert all(len(body.encode()) <= 2000 for body in bodies(sender))


@pytest.mark.parametrize("count", [30, 400])  # one message's JSON or less, and beyond it
async def test_incompressible_events_still_respect_the_limits(count: int):
    sender = FakeSender()
    b = await started(
        sender, max_message_bytes=4096, max_batch_bytes=10_000, max_message_event_bytes=16_384
    )
    events = [noisy(f"e{i:03d}", 100) for i in range(count)]
    try:
        await asyncio.gather(b.submit("acme", events), b.submit("other", [noisy("x", 100)]))
    finally:
        await b.close()
    assert [i for t, ids in sender.messages() if t == "acme" for i in ids] == [
        f"e{i:03d}" for i in range(count)
    ]
    assert all(len(body.encode()) <= 4096 for body in bodies(sender))
    for call in sender.calls:
        assert len(call) <= 10 and sum(len(body.encode()) for body in call) <= 10_000


async def test_a_request_over_the_json_bound_of_a_message_is_split_even_if_it_compresses():
    sender = FakeSender()
    b = IngestBatcher(sender, max_message_event_bytes=64 * 1024)  # runner never started
    events = typical(1000)
    await b.submit("acme", events)  # sent directly: more than one message
    messages = sender.messages()
    assert len(messages) > 1 and len(sender.calls) == 1
    assert [i for _, ids in messages for i in ids] == [orjson.loads(e)["id"] for e in events]
    for body in bodies(sender):
        assert envelope.open_body(body).size <= 64 * 1024


async def test_pending_bodies_below_a_batch_wait_for_more_requests(fast_backoff):
    sender = FakeSender()
    b = await started(sender, linger=0.002)
    try:
        await b.submit("acme", typical(1000))  # learns how well such events compress
        fast_backoff.clear()
        # ~260 KB of JSON pending: more than a batch's bytes, but not compressed.
        await asyncio.gather(*(b.submit("acme", [e]) for e in typical(1000, prefix="s")))
    finally:
        await b.close()
    assert 0.002 in fast_backoff  # it lingered for more
    assert len(sender.calls) == 2


# --- failures ------------------------------------------------------------------------


async def test_send_raising_fails_every_waiting_submit(fast_backoff):
    sender = FakeSender(raises=RuntimeError("sqs down"))
    b = await started(sender)
    try:
        results = await asyncio.gather(
            b.submit("a", [ev("a1")]),
            b.submit("b", [ev("b1")]),
            b.submit("a", [ev("a2")]),
            return_exceptions=True,
        )
    finally:
        await b.close()
    assert len(results) == 3
    for r in results:
        assert isinstance(r, Unavailable)
        assert r.status == 503
        assert "Retry-After" in r.headers
    assert len(sender.calls) == 1  # an exception is not retried per entry


async def test_direct_send_raising_is_unavailable(fast_backoff):
    sender = FakeSender(raises=ConnectionError("boom"))
    b = IngestBatcher(sender, max_message_bytes=200)
    with pytest.raises(Unavailable):
        await b.submit("acme", [noisy(f"e{i}", 50) for i in range(10)])


async def test_partial_failure_retries_only_failed_entries(fast_backoff):
    # tenant b's message fails once, then succeeds
    sender = FakeSender(decide=lambda n, body: n > 0 or decode(body)[0] != "b")
    b = await started(sender)
    try:
        await asyncio.gather(b.submit("a", [ev("a1")]), b.submit("b", [ev("b1")]))
    finally:
        await b.close()
    assert len(sender.calls) == 2
    assert len(sender.calls[0]) == 2
    assert [decode(x) for x in sender.calls[1]] == [("b", ["b1"])]


async def test_message_that_finally_fails_gets_unavailable_others_succeed(fast_backoff):
    sender = FakeSender(decide=lambda n, body: decode(body)[0] != "b")
    b = await started(sender)
    try:
        results = await asyncio.gather(
            b.submit("a", [ev("a1")]),
            b.submit("b", [ev("b1")]),
            b.submit("a", [ev("a2")]),
            b.submit("b", [ev("b2")]),
            return_exceptions=True,
        )
    finally:
        await b.close()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Unavailable) and isinstance(results[3], Unavailable)
    assert len(sender.calls) == 3  # 3 attempts
    for retry in sender.calls[1:]:
        assert [decode(x) for x in retry] == [("b", ["b1", "b2"])]


async def test_direct_send_partial_failure_is_unavailable(fast_backoff):
    sender = FakeSender(decide=lambda n, body: not decode(body)[1][0].startswith("e0"))
    b = IngestBatcher(sender, max_message_bytes=200)
    with pytest.raises(Unavailable):
        await b.submit("acme", [noisy(f"e{i}", 50) for i in range(10)])
    assert len(sender.calls) == 3
    assert all(len(c) == 1 for c in sender.calls[1:])  # only the failed entry is re-sent


async def test_a_partly_queued_request_says_which_events_will_be_stored(fast_backoff):
    events = [noisy(f"e{i}", 50) for i in range(10)]
    # The message holding e4 is refused (every attempt), the others are queued.
    sender = FakeSender(decide=lambda n, body: "e4" not in decode(body)[1])
    refunds: list[tuple[str, int, int]] = []

    async def refund(tenant: str, n: int, size: int) -> None:
        refunds.append((tenant, n, size))

    async def admit(tenant: str, n: int, size: int) -> None:
        return None

    b = IngestBatcher(sender, max_message_bytes=300, admit=admit, refund=refund)
    with pytest.raises(PartlyQueued) as caught:
        await b.submit("acme", events)
    groups = [ids for _, ids in sender.messages()[: len(sender.calls[0])]]
    assert len(groups) > 2 and [i for g in groups for i in g] == [f"e{i}" for i in range(10)]
    refused = next(g for g in groups if "e4" in g)
    assert len(refused) > 1 and refused != groups[0] and refused != groups[-1]
    first = int(refused[0][1:])
    last = first + len(refused) - 1
    problem = caught.value.to_problem()
    assert problem["status"] == 503
    assert problem["accepted"] == len(events) - len(refused)
    assert problem["not_accepted"] == [[first, last]]
    assert f"not the events at index {first}-{last}" in problem["detail"]
    # the tenant's usage gives back only what was not queued
    missing = events[first : last + 1]
    assert refunds == [("acme", len(missing), sum(len(e) for e in missing))]


async def test_no_backoff_after_the_last_attempt(fast_backoff):
    sender = FakeSender(decide=lambda n, body: False)
    b = IngestBatcher(sender, max_message_bytes=200)
    with pytest.raises(Unavailable):
        await b.submit("acme", [noisy(f"e{i}", 50) for i in range(10)])
    assert len(sender.calls) == 3
    assert [d for d in fast_backoff if d >= 0.05] == [0.05, 0.1]


# --- close --------------------------------------------------------------------------


async def test_close_flushes_pending_requests():
    sender = FakeSender()
    b = await started(sender, linger=0.01)
    tasks = [asyncio.create_task(b.submit("acme", [ev(f"e{i}")])) for i in range(4)]
    await asyncio.sleep(0)  # let the submits enqueue
    assert not any(t.done() for t in tasks)
    await b.close()
    assert b._runner is not None and b._runner.done()
    assert all(t.done() and t.exception() is None for t in tasks)
    assert [i for _, ids in sender.messages() for i in ids] == [f"e{i}" for i in range(4)]


async def test_submit_after_close_is_unavailable():
    sender = FakeSender()
    b = await started(sender)
    await b.close()
    with pytest.raises(Unavailable):
        await b.submit("acme", [ev("late")])
    assert sender.calls == []


# --- adaptive batching ----------------------------------------------------------------


class GatedSender(FakeSender):
    """A SendMessageBatch that does not answer until ``gate`` opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def __call__(self, bodies: list[str]) -> list[bool]:
        self.calls.append(list(bodies))
        await self.gate.wait()
        return [True] * len(bodies)


async def started_watched(
    sender: FakeSender, slots: int, **kw
) -> tuple[IngestBatcher, WatchedSemaphore]:
    kw.setdefault("linger", 0.001)
    b = IngestBatcher(sender, coalesce_in_flight=slots, **kw)
    watched = b._coalesce_slots = WatchedSemaphore(slots)
    b.start()
    return b, watched


async def wait_for_calls(sender: FakeSender, n: int) -> None:
    for _ in range(1000):
        if len(sender.calls) >= n:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"expected {n} send(s), saw {len(sender.calls)}")


async def test_requests_arriving_during_a_send_join_the_next_one():
    sender = GatedSender()
    b, slots = await started_watched(sender, 1)
    try:
        first = asyncio.ensure_future(b.submit("acme", [ev("first")]))
        await wait_for_calls(sender, 1)
        later = [asyncio.ensure_future(b.submit("acme", [ev(f"later{i}")])) for i in range(20)]
        await asyncio.wait_for(slots.blocked.wait(), 5)  # they wait for the one slot
        assert len(sender.calls) == 1  # still no second send while one is out
        sender.gate.set()
        await asyncio.gather(first, *later)
    finally:
        sender.gate.set()  # a failed check must not leave close() waiting
        await b.close()
    assert [ids for _, ids in sender.messages()] == [
        ["first"],
        [f"later{i}" for i in range(20)],
    ]


async def test_coalesced_sends_in_flight_are_bounded():
    sender = GatedSender()
    b, slots = await started_watched(sender, 2)
    try:
        waiting = []
        for i in range(2):
            waiting.append(asyncio.ensure_future(b.submit("acme", [ev(f"r{i}")])))
            await wait_for_calls(sender, i + 1)  # r0 and r1 take both slots
        assert not slots.blocked.is_set()
        waiting += [asyncio.ensure_future(b.submit("acme", [ev(f"r{i}")])) for i in (2, 3)]
        await asyncio.wait_for(slots.blocked.wait(), 5)  # r2 and r3 wait for a slot
        assert len(sender.calls) == 2  # no third send while both are out
        sender.gate.set()
        await asyncio.gather(*waiting)
    finally:
        sender.gate.set()  # a failed check must not leave close() waiting
        await b.close()
    assert [ids for _, ids in sender.messages()] == [["r0"], ["r1"], ["r2", "r3"]]


async def test_large_requests_do_not_wait_for_coalesced_sends():
    sender = GatedSender()
    b = await started(sender, coalesce_in_flight=1, max_message_bytes=4096, max_batch_bytes=4096)
    try:
        small = asyncio.ensure_future(b.submit("acme", [ev("small")]))
        await wait_for_calls(sender, 1)
        big = asyncio.ensure_future(b.submit("acme", [noisy(f"b{i}", 1500) for i in range(4)]))
        await wait_for_calls(sender, 2)  # sent directly although the coalesced slot is taken
        sender.gate.set()
        await asyncio.gather(small, big)
    finally:
        sender.gate.set()  # a failed check must not leave close() waiting
        await b.close()


# --- admission (the tenant's ingest limits) ----------------------------------------


class Gatekeeper:
    def __init__(self, refuse: Exception | None = None) -> None:
        self.refuse = refuse
        self.admitted: list[tuple[str, int, int]] = []
        self.refunded: list[tuple[str, int, int]] = []

    async def admit(self, tenant: str, events: int, size: int) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.admitted.append((tenant, events, size))

    async def refund(self, tenant: str, events: int, size: int) -> None:
        self.refunded.append((tenant, events, size))


async def test_a_refused_request_queues_nothing():
    from services.core.errors import RateLimited

    sender = FakeSender()
    gate = Gatekeeper(
        RateLimited("over", slug="ingest-rate-limited", limit="x", value=1, retry_after=1)
    )
    b = await started(sender, admit=gate.admit, refund=gate.refund)
    with pytest.raises(RateLimited):
        await b.submit("acme", [ev("a"), ev("b")])
    await b.close()
    assert sender.calls == [] and gate.refunded == []


async def test_admission_counts_events_and_bytes_once_per_request():
    sender = FakeSender()
    gate = Gatekeeper()
    b = await started(sender, admit=gate.admit, refund=gate.refund)
    events = [ev("a"), ev("b", pad=10)]
    await b.submit("acme", events)
    await b.close()
    assert gate.admitted == [("acme", 2, sum(len(e) for e in events))]
    assert sender.messages() == [("acme", ["a", "b"])]


async def test_a_request_the_queue_refused_is_taken_back_out_of_the_usage(fast_backoff):
    gate = Gatekeeper()
    b = await started(
        FakeSender(decide=lambda call, body: False), admit=gate.admit, refund=gate.refund
    )
    with pytest.raises(Unavailable):
        await b.submit("acme", [ev("a")])
    await b.close()
    assert gate.refunded == gate.admitted == [("acme", 1, len(ev("a")))]


class _Events(list):
    """A list a test can hold a weak reference to."""


@pytest.mark.parametrize("count", [10, 1000, 6000])  # coalesced, one message, split
async def test_a_settled_request_is_freed_without_the_cycle_collector(count: int):
    # The service collects cycles rarely (services/core/web/app.py GC_THRESHOLDS): a
    # request kept alive by a reference cycle would hold its events and its message
    # body (~0.5 MB a bulk) until then - 120 MB more RSS under a bulk load.
    import gc
    import weakref

    sender = FakeSender()
    b = await started(sender)
    gc.collect()
    gc.disable()
    try:
        events = _Events(typical(count))
        alive = weakref.ref(events)
        await b.submit("acme", events)
        del events
        await b.close()
        assert alive() is None
    finally:
        gc.enable()
