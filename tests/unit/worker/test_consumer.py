"""decode() (services/worker/messages.py), the byte budget that bounds the events a
worker holds (budget.py) and Consumer.handle() against in-memory fakes of SQS, MongoDB
and Redis."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import bson
import orjson
import pytest
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect, BulkWriteError

from services.core.logs import envelope
from services.worker.budget import ByteBudget
from services.worker.consumer import Consumer
from services.worker.messages import PoisonMessage, decode

QUEUE_URL = "http://sqs.local/000000000000/logs"


def event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "timestamp": "2026-01-31T12:00:00.000Z",
        "received_at": "2026-01-31T12:00:01.000Z",
        "level": "INFO",
        "message": f"message {event_id}",
        **extra,
    }


def message(n: int, tenant: str, events: list[dict], *, receives: int = 1) -> dict[str, Any]:
    body = {"v": 1, "tenant_id": tenant, "events": events}
    return raw_message(n, orjson.dumps(body).decode(), receives=receives)


def raw_message(n: int, body: str, *, receives: int = 1) -> dict[str, Any]:
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"r{n}",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": str(receives)},
    }


class FakeLogs:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[list[dict], bool]] = []

    async def insert_many(self, docs: list[dict], ordered: bool = True) -> Any:
        self.calls.append((list(docs), ordered))
        if self.error is not None:
            raise self.error
        for doc in docs:
            bson.encode(doc)  # as the driver does before sending: may raise
        return SimpleNamespace(inserted_ids=[d["_id"] for d in docs])


class FakeSqsClient:
    def __init__(self, error: Exception | None = None) -> None:
        self.deletes: list[dict[str, Any]] = []
        self.error = error

    async def delete_message_batch(self, **kw: Any) -> dict[str, Any]:
        self.deletes.append(kw)
        if self.error is not None:
            raise self.error
        return {"Successful": [{"Id": e["Id"]} for e in kw["Entries"]], "Failed": []}


class FakeSqs:
    def __init__(self, client: FakeSqsClient) -> None:
        self.client = client

    async def url(self) -> str:
        return QUEUE_URL


class FakePipeline:
    def __init__(self, owner: FakeRedis) -> None:
        self.owner = owner
        self.queued: list[tuple[str, bytes]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    def publish(self, channel: str, data: bytes) -> FakePipeline:
        self.queued.append((channel, data))
        return self

    def zadd(self, key: str, mapping: dict[bytes, int]) -> FakePipeline:
        self.queued.append(("zadd", (key, mapping)))
        return self

    def zremrangebyrank(self, key: str, start: int, stop: int) -> FakePipeline:
        self.queued.append(("trim", (key, start, stop)))
        return self

    def incr(self, key: str) -> FakePipeline:
        self.queued.append(("incr", key))
        return self

    def delete(self, *keys: str) -> FakePipeline:
        self.queued.append(("delete", keys))
        return self

    async def execute(self) -> list[int]:
        if self.owner.error is not None:
            raise self.owner.error
        self.owner.published.extend(q for q in self.queued if q[0].startswith("logs:"))
        self.owner.ring.extend(q for q in self.queued if not q[0].startswith("logs:"))
        self.owner.executes += 1
        return [1] * len(self.queued)


class FakeRedis:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.published: list[tuple[str, bytes]] = []
        self.ring: list[tuple[str, Any]] = []
        self.executes = 0
        self.transaction_args: list[bool] = []

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        self.transaction_args.append(transaction)
        return FakePipeline(self)


class FakeRollups:
    """Records what the consumer tells the rollups: announced, then newly stored."""

    def __init__(self, begin_error: Exception | None = None) -> None:
        self.begin_error = begin_error
        self.announced: list[list[str]] = []
        self.counted: list[list[str]] = []

    @contextlib.asynccontextmanager
    async def attempt(self, docs: list[dict]) -> AsyncIterator[str]:
        if self.begin_error is not None:
            raise self.begin_error
        self.announced.append([d["_id"] for d in docs])
        yield "attempt"

    async def finish(self, attempt: str, docs: list[dict], new: list[int]) -> None:
        self.counted.append([docs[i]["_id"] for i in new])


class World:
    def __init__(
        self,
        *,
        insert_error: Exception | None = None,
        delete_error: Exception | None = None,
        publish_error: Exception | None = None,
        rollups: FakeRollups | None = None,
        ring_size: int = 0,
    ) -> None:
        self.logs = FakeLogs(insert_error)
        self.sqs_client = FakeSqsClient(delete_error)
        self.redis = FakeRedis(publish_error)
        self.consumer = Consumer(
            FakeSqs(self.sqs_client),
            {"logs": self.logs},
            self.redis,
            rollups=rollups,  # type: ignore[arg-type]
            ring_size=ring_size,
        )

    @property
    def deleted(self) -> list[str]:
        return [e["ReceiptHandle"] for call in self.sqs_client.deletes for e in call["Entries"]]

    def published(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for channel, data in self.redis.published:
            out.setdefault(channel, []).extend(json.loads(data))
        return out


# --- decode ----------------------------------------------------------------------------


def test_decode_good_message():
    d = decode(message(1, "acme", [event("a", service="s"), event("b")]))
    assert (d.receipt, d.message_id, d.tenant_id) == ("r1", "m1", "acme")
    assert [e["id"] for e in d.events] == ["a", "b"]
    assert [doc["_id"] for doc in d.docs] == ["acme:a", "acme:b"]
    assert all(doc["tenant_id"] == "acme" and doc["level_no"] == 20 for doc in d.docs)
    assert d.events[0] == event("a", service="s")  # wire shape kept for publishing


def test_decode_empty_events():
    d = decode(message(1, "acme", []))
    assert d.events == [] and d.docs == []


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "",
        "[1, 2]",
        '"string"',
        '{"v": 2, "tenant_id": "t", "events": []}',
        '{"tenant_id": "t", "events": []}',
        '{"v": "1", "tenant_id": "t", "events": []}',
        '{"v": 1, "events": []}',
        '{"v": 1, "tenant_id": "t"}',
        '{"v": 1, "tenant_id": 5, "events": []}',
        '{"v": 1, "tenant_id": "t", "events": {}}',
        '{"v": 1, "tenant_id": "t", "events": [5]}',
    ],
)
def test_decode_poison_bodies(body):
    with pytest.raises(PoisonMessage):
        decode(raw_message(1, body))


@pytest.mark.parametrize(
    "bad",
    [
        {"timestamp": "garbage"},
        {"timestamp": None},
        {"received_at": "31/01/2026"},
        {"level": "warn"},
    ],
)
def test_decode_poison_events(bad):
    ev = {**event("a"), **bad}
    with pytest.raises(PoisonMessage):
        decode(message(1, "acme", [event("ok"), ev]))


@pytest.mark.parametrize("bad_id", [None, 5, ""])
def test_decode_rejects_non_string_ids(bad_id):
    with pytest.raises(PoisonMessage):
        decode(message(1, "acme", [{**event("a"), "id": bad_id}]))


def test_decode_missing_fields_poison():
    ev = event("a")
    del ev["timestamp"]
    with pytest.raises(PoisonMessage):
        decode(message(1, "acme", [ev]))
    with pytest.raises(PoisonMessage):
        decode({"MessageId": "m", "ReceiptHandle": "r"})  # no Body


# --- handle ------------------------------------------------------------------------------


async def test_handle_stores_deletes_and_publishes():
    w = World()
    msgs = [
        message(1, "acme", [event("a1"), event("a2")]),
        message(2, "beta", [event("b1")]),
        message(3, "acme", [event("a3")]),
    ]
    assert await w.consumer.handle(msgs) is True

    assert len(w.logs.calls) == 1
    docs, ordered = w.logs.calls[0]
    assert ordered is False
    assert [d["_id"] for d in docs] == ["acme:a1", "acme:a2", "beta:b1", "acme:a3"]

    assert len(w.sqs_client.deletes) == 1
    assert w.sqs_client.deletes[0]["QueueUrl"] == QUEUE_URL
    assert w.deleted == ["r1", "r2", "r3"]
    ids = [e["Id"] for e in w.sqs_client.deletes[0]["Entries"]]
    assert len(set(ids)) == len(ids)

    assert w.redis.transaction_args == [False]
    assert w.redis.executes == 1
    assert w.published() == {
        "logs:acme": [
            {**event("a1"), "tenant_id": "acme"},
            {**event("a2"), "tenant_id": "acme"},
            {**event("a3"), "tenant_id": "acme"},
        ],
        "logs:beta": [{**event("b1"), "tenant_id": "beta"}],
    }
    # published events are the API shape: no storage internals
    for events in w.published().values():
        for e in events:
            assert not {"_id", "level_no", "minute"} & set(e)


async def test_duplicates_count_as_success():
    error = BulkWriteError(
        {
            "writeErrors": [
                {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"},
                {"index": 2, "code": 11000, "errmsg": "E11000 duplicate key"},
            ],
            "nInserted": 1,
        }
    )
    w = World(insert_error=error)
    msgs = [message(1, "acme", [event("a1"), event("a2")]), message(2, "acme", [event("a3")])]
    assert await w.consumer.handle(msgs) is True
    assert w.deleted == ["r1", "r2"]
    assert [e["id"] for e in w.published()["logs:acme"]] == ["a1", "a2", "a3"]


async def test_non_duplicate_write_error_keeps_only_its_message():
    error = BulkWriteError(
        {
            "writeErrors": [
                {"index": 0, "code": 11000, "errmsg": "dup"},
                {"index": 2, "code": 2, "errmsg": "bad value"},
            ],
            "nInserted": 2,
        }
    )
    w = World(insert_error=error)
    msgs = [
        message(1, "acme", [event("a1"), event("a2")]),  # docs 0, 1
        message(2, "beta", [event("b1"), event("b2")]),  # docs 2, 3
        message(3, "acme", [event("a3")]),  # doc 4
    ]
    assert await w.consumer.handle(msgs) is False
    assert w.deleted == ["r1", "r3"]
    assert set(w.published()) == {"logs:acme"}
    assert [e["id"] for e in w.published()["logs:acme"]] == ["a1", "a2", "a3"]


async def test_write_concern_error_keeps_everything_stored_but_not_deleted():
    error = BulkWriteError(
        {"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "wtimeout"}]}
    )
    w = World(insert_error=error)
    assert await w.consumer.handle([message(1, "acme", [event("a")])]) is False
    assert w.deleted == []
    assert w.redis.published == []


async def test_pymongo_error_keeps_all():
    w = World(insert_error=AutoReconnect("primary stepped down"))
    msgs = [message(1, "acme", [event("a")]), message(2, "beta", [event("b")])]
    assert await w.consumer.handle(msgs) is False
    assert len(w.logs.calls) == 1
    assert w.sqs_client.deletes == []
    assert w.redis.published == []
    assert w.redis.transaction_args == []


async def test_poison_messages_are_not_deleted():
    w = World()
    msgs = [
        raw_message(1, "garbage", receives=5),
        message(2, "acme", [event("a")]),
        raw_message(3, '{"v": 9}'),
    ]
    assert await w.consumer.handle(msgs) is True
    assert w.deleted == ["r2"]
    assert [d["_id"] for d in w.logs.calls[0][0]] == ["acme:a"]


async def test_only_poison_touches_nothing():
    w = World()
    assert await w.consumer.handle([raw_message(1, "nope")]) is True
    assert w.logs.calls == [] and w.sqs_client.deletes == [] and w.redis.published == []


async def test_messages_without_events_are_deleted_without_insert():
    w = World()
    assert await w.consumer.handle([message(1, "acme", [])]) is True
    assert w.logs.calls == []
    assert w.deleted == ["r1"]


async def test_deletes_are_chunked_by_ten():
    w = World()
    msgs = [message(i, "acme", [event(f"e{i}")]) for i in range(12)]
    assert await w.consumer.handle(msgs) is True
    assert [len(c["Entries"]) for c in w.sqs_client.deletes] == [10, 2]
    assert w.deleted == [f"r{i}" for i in range(12)]
    for call in w.sqs_client.deletes:
        assert [e["Id"] for e in call["Entries"]] == [str(j) for j in range(len(call["Entries"]))]


async def test_publish_failure_is_best_effort():
    w = World(publish_error=ConnectionError("redis down"))
    assert await w.consumer.handle([message(1, "acme", [event("a")])]) is True
    assert w.deleted == ["r1"]


async def test_delete_failure_still_publishes():
    w = World(delete_error=ConnectionError("sqs down"))
    assert await w.consumer.handle([message(1, "acme", [event("a")])]) is True
    assert [e["id"] for e in w.published()["logs:acme"]] == ["a"]


@pytest.mark.parametrize(("compression", "version"), [("zstd", 3), ("zlib", 2)])
def test_decode_compressed_message_from_the_producer(
    compression: envelope.Compression, version: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(envelope, "ZSTD_FROM_BYTES", 0)  # zstd however small
    evs = [event("a", service="s"), event("b")]
    body = envelope.encode("acme", [orjson.dumps(e) for e in evs], compression)
    assert body.startswith(f'{{"v":{version},')
    d = decode(raw_message(1, body))
    assert d.tenant_id == "acme"
    assert d.events == evs
    assert [doc["_id"] for doc in d.docs] == ["acme:a", "acme:b"]


async def test_a_v3_message_that_does_not_inflate_is_poison_and_the_others_are_stored(
    monkeypatch: pytest.MonkeyPatch,
):
    """A v3 body is inflated only once the batch has room in the budget: a frame that
    turns out broken then is poison like any undecodable message."""
    monkeypatch.setattr(envelope, "ZSTD_FROM_BYTES", 0)  # zstd however small
    good = envelope.encode("acme", [orjson.dumps(event("a", message="x" * 500))])
    doc = orjson.loads(envelope.encode("acme", [orjson.dumps(event("b", message="y" * 500))]))
    frame = base64.b64decode(doc["events_zstd"])
    doc["events_zstd"] = base64.b64encode(frame[:-8]).decode()  # truncated, size declared
    w = World()
    assert await w.consumer.handle(
        [raw_message(1, good), raw_message(2, orjson.dumps(doc).decode())]
    )
    assert w.deleted == ["r1"]
    assert [d["_id"] for d in w.logs.calls[0][0]] == ["acme:a"]


# --- rollups and the recent-events ring ----------------------------------------------------


def _dup_error() -> BulkWriteError:
    return BulkWriteError(
        {"writeErrors": [{"index": 1, "code": 11000, "errmsg": "dup"}], "nInserted": 2}
    )


async def test_rollups_count_only_the_newly_stored_events():
    rollups = FakeRollups()
    w = World(insert_error=_dup_error(), rollups=rollups)
    msgs = [message(1, "acme", [event("a1"), event("a2")]), message(2, "beta", [event("b1")])]
    assert await w.consumer.handle(msgs) is True
    assert rollups.announced == [["acme:a1", "acme:a2", "beta:b1"]]
    assert rollups.counted == [["acme:a1", "beta:b1"]]  # a2 was stored before


async def test_a_batch_that_cannot_be_announced_is_not_stored():
    w = World(rollups=FakeRollups(begin_error=AutoReconnect("down")))
    assert await w.consumer.handle([message(1, "acme", [event("a")])]) is False
    assert w.logs.calls == [] and w.deleted == []


async def test_failed_insert_counts_nothing_now():
    rollups = FakeRollups()
    w = World(insert_error=AutoReconnect("gone"), rollups=rollups)
    assert await w.consumer.handle([message(1, "acme", [event("a")])]) is False
    assert rollups.announced == [["acme:a"]] and rollups.counted == []  # left to the recovery


async def test_ring_gets_new_events_once_and_a_redelivery_invalidates_it():
    w = World(ring_size=3)
    assert await w.consumer.handle([message(1, "acme", [event("a1"), event("a2")])]) is True
    ops = [op for op, _ in w.redis.ring]
    assert ops == ["zadd", "trim"]
    key, mapping = w.redis.ring[0][1]
    assert key == "recent:acme"
    assert sorted(json.loads(m)["id"] for m in mapping) == ["a1", "a2"]
    assert w.redis.ring[1][1] == ("recent:acme", 0, -4)

    w2 = World(insert_error=_dup_error(), ring_size=3)
    msgs = [message(1, "acme", [event("a1"), event("a2"), event("a3")])]
    assert await w2.consumer.handle(msgs) is True
    ops = [op for op, _ in w2.redis.ring]
    assert ops[:2] == ["incr", "delete"]  # the tenant's ring is rebuilt from storage
    added = [
        json.loads(m)["id"] for op, (k, *rest) in w2.redis.ring if op == "zadd" for m in rest[0]
    ]
    assert added == ["a1", "a3"]


# --- the memory bound: events in hand --------------------------------------------------


class WatchedRoom(asyncio.Condition):
    """A ByteBudget's condition; ``waiting`` is set once a batch has to wait for room.

    Observed instead of slept on: when it is set, a batch is blocked on the budget.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def wait(self) -> bool:
        self.waiting.set()
        return await super().wait()


def watched(budget: ByteBudget) -> WatchedRoom:
    room = budget._room = WatchedRoom()
    return room


async def test_budget_lets_batches_in_while_they_fit():
    budget = ByteBudget(100)
    async with budget.hold(60), budget.hold(40):
        assert budget.used == 100
    assert budget.used == 0


async def test_budget_holds_a_batch_until_there_is_room():
    budget = ByteBudget(100)
    room = watched(budget)
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with budget.hold(70):
            first_in.set()
            await release_first.wait()
            order.append("first done")

    async def second() -> None:
        async with budget.hold(50):
            order.append("second in")

    one = asyncio.create_task(first())
    await first_in.wait()
    two = asyncio.create_task(second())
    await asyncio.wait_for(room.waiting.wait(), 5)  # 70 + 50 > 100: second waits
    assert order == [] and budget.used == 70
    release_first.set()
    await asyncio.gather(one, two)
    assert order == ["first done", "second in"]


async def test_a_batch_larger_than_the_budget_runs_alone():
    budget = ByteBudget(10)
    async with budget.hold(1000):
        assert budget.used == 1000
    assert budget.used == 0


async def test_handle_parses_a_batch_only_within_the_budget():
    """Two batches that do not fit together: the second is parsed and stored only
    after the first finished, so the worker never holds both."""
    w = World()
    big = [event(f"e{i}", message="x" * 2000) for i in range(20)]
    m1, m2 = message(1, "acme", big), message(2, "acme", big)
    w.consumer.budget = ByteBudget(len(m1["Body"]) + 100)
    room = watched(w.consumer.budget)
    gate = asyncio.Event()
    seen_used: list[int] = []
    original = w.logs.insert_many

    async def slow_insert(docs: list[dict], ordered: bool = True) -> Any:
        seen_used.append(w.consumer.budget.used)
        await gate.wait()
        return await original(docs, ordered)

    w.logs.insert_many = slow_insert  # type: ignore[method-assign]
    one = asyncio.create_task(w.consumer.handle([m1]))
    two = asyncio.create_task(w.consumer.handle([m2]))
    await asyncio.wait_for(room.waiting.wait(), 5)  # the second waits for room
    assert len(seen_used) == 1  # only one batch got to storing
    gate.set()
    assert await one is True and await two is True
    assert seen_used == [len(m1["Body"]), len(m2["Body"])]
    assert w.consumer.budget.used == 0


# --- what reaches the dead-letter queue ----------------------------------------------------


def dead_lettered() -> float:
    return REGISTRY.get_sample_value("logserver_worker_messages_dead_lettered_total") or 0.0


def nested_array_refused() -> BulkWriteError:
    """FerretDB v1's answer to an array inside an array."""
    return BulkWriteError(
        {
            "writeErrors": [{"index": 0, "code": 2, "errmsg": "nested arrays are not supported"}],
            "nInserted": 0,
        }
    )


@pytest.mark.parametrize(("receives", "counted"), [(1, 0), (4, 0), (5, 1), (6, 1)])
async def test_store_failure_on_the_last_receive_counts_as_dead_lettered(receives, counted):
    w = World(insert_error=nested_array_refused())
    before = dead_lettered()
    msg = message(1, "acme", [event("a", attributes={"x": [[1, 2]]})], receives=receives)
    assert await w.consumer.handle([msg]) is False
    assert w.deleted == []
    assert dead_lettered() - before == counted


async def test_whole_batch_store_failure_on_the_last_receive_counts_each_message():
    w = World(insert_error=AutoReconnect("down"))
    before = dead_lettered()
    msgs = [message(i, "acme", [event(f"e{i}")], receives=5 if i < 2 else 1) for i in range(3)]
    assert await w.consumer.handle(msgs) is False
    assert dead_lettered() - before == 2


async def test_poison_on_the_last_receive_still_counts():
    w = World()
    before = dead_lettered()
    assert await w.consumer.handle([raw_message(1, "garbage", receives=5)]) is True
    assert dead_lettered() - before == 1


async def test_an_unencodable_event_fails_only_its_own_message():
    """An integer beyond 64 bits makes the driver refuse the whole insert_many: the
    other messages of the batch must still be stored, and the loop must not crash."""
    w = World()
    before = dead_lettered()
    msgs = [
        message(1, "acme", [event("a1")]),
        message(2, "beta", [event("b1", attributes={"n": 2**63})], receives=5),
        message(3, "acme", [event("a2")]),
    ]
    assert await w.consumer.handle(msgs) is False
    assert w.deleted == ["r1", "r3"]
    assert [e["id"] for e in w.published()["logs:acme"]] == ["a1", "a2"]
    assert "logs:beta" not in w.published()
    assert dead_lettered() - before == 1


async def test_a_consumer_loop_survives_a_failing_batch(monkeypatch: pytest.MonkeyPatch):
    w = World()
    receives = 0

    async def receive_message(**kw: Any) -> dict[str, Any]:
        nonlocal receives
        receives += 1
        if receives == 3:
            w.consumer._stopping.set()
        return {"Messages": [message(receives, "acme", [event(f"e{receives}")], receives=5)]}

    async def broken(messages: list[dict]) -> bool:
        raise RuntimeError("a bug")

    w.sqs_client.receive_message = receive_message  # type: ignore[attr-defined]
    monkeypatch.setattr(w.consumer, "handle", broken)
    monkeypatch.setattr(w.consumer, "_pause", lambda seconds: asyncio.sleep(0))
    before = dead_lettered()
    await asyncio.wait_for(w.consumer._loop(0), 5)
    assert receives == 3  # went on receiving after each failure
    assert dead_lettered() - before == 3


# --- the queue's own maxReceiveCount -------------------------------------------------------


class AttributesClient(FakeSqsClient):
    def __init__(self, attributes: dict[str, str]) -> None:
        super().__init__()
        self.attributes = attributes

    async def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict:
        assert QueueUrl == QUEUE_URL
        return {"Attributes": {k: v for k, v in self.attributes.items() if k in AttributeNames}}


async def test_max_receives_is_the_queues_redrive_max_receive_count():
    policy = '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:dlq","maxReceiveCount":"3"}'
    client = AttributesClient({"RedrivePolicy": policy})
    consumer = Consumer(FakeSqs(client), {"logs": FakeLogs()}, FakeRedis(), max_receives=5)
    await consumer.sync_max_receives()
    assert consumer.max_receives == 3
    before = dead_lettered()
    w = World(insert_error=AutoReconnect("down"))
    w.consumer.max_receives = consumer.max_receives
    assert await w.consumer.handle([message(1, "acme", [event("a")], receives=3)]) is False
    assert dead_lettered() - before == 1  # the third receive was the last


async def test_without_a_redrive_policy_the_setting_stays():
    consumer = Consumer(
        FakeSqs(AttributesClient({})), {"logs": FakeLogs()}, FakeRedis(), max_receives=4
    )
    await consumer.sync_max_receives()
    assert consumer.max_receives == 4
