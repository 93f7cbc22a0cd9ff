"""InvalidationBus: what a change affects, delivery to callbacks, publishing, resubscribing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.core.invalidation import INVALIDATIONS_CHANNEL, Invalidation, InvalidationBus

# --- Invalidation --------------------------------------------------------------------


def test_key_change_affects_that_key_only() -> None:
    change = Invalidation("acme", "lsk_1")
    assert change.affects_key("lsk_1", "acme")
    assert not change.affects_key("lsk_2", "acme")
    assert not change.affects_tenant("acme")  # a tenant's own settings did not change
    assert not change.everything


def test_tenant_change_affects_the_tenant_and_all_its_keys() -> None:
    change = Invalidation("acme")
    assert change.affects_tenant("acme") and not change.affects_tenant("other")
    assert change.affects_key("lsk_1", "acme")
    assert not change.affects_key("lsk_1", "other")


def test_everything_affects_everything() -> None:
    change = Invalidation()
    assert change.everything
    assert change.affects_tenant("acme") and change.affects_key("lsk_1", "*")


@pytest.mark.parametrize("change", [Invalidation("acme", "lsk_1"), Invalidation("acme")])
def test_round_trip(change: Invalidation) -> None:
    assert Invalidation.from_bytes(change.to_bytes()) == change


@pytest.mark.parametrize(
    "data", [b"{not json", b"[]", b'"acme"', b"{}", b'{"tenant": 3}', b'{"tenant": null}']
)
def test_unreadable_message_means_everything(data: bytes) -> None:
    assert Invalidation.from_bytes(data).everything


# --- delivery ------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Invalidation] = []
        self.called = asyncio.Event()

    def __call__(self, change: Invalidation) -> None:
        self.seen.append(change)
        self.called.set()

    async def until(self, n: int, within: float = 2.0) -> None:
        async with asyncio.timeout(within):
            while len(self.seen) < n:
                self.called.clear()
                await self.called.wait()


def test_messages_reach_every_callback_in_order_and_unsubscribe_works() -> None:
    bus = InvalidationBus(None)
    order: list[str] = []
    first, second = Recorder(), Recorder()
    bus.subscribe(lambda c: order.append("first"))
    bus.subscribe(first)
    stop = bus.subscribe(second)
    bus.subscribe(lambda c: order.append("last"))
    bus.on_message({"type": "message", "channel": b"x", "data": b'{"tenant":"acme"}'})
    assert first.seen == second.seen == [Invalidation("acme")]
    assert order == ["first", "last"]
    stop()
    bus.on_message({"type": "message", "channel": b"x", "data": b'{"tenant":"b","key_id":"k"}'})
    assert first.seen[-1] == Invalidation("b", "k")
    assert second.seen == [Invalidation("acme")]


def test_each_subscription_confirmation_means_everything_may_have_changed() -> None:
    bus = InvalidationBus(None)
    seen = Recorder()
    bus.subscribe(seen)
    bus.on_message({"type": "subscribe", "channel": INVALIDATIONS_CHANNEL.encode(), "data": 1})
    bus.on_message({"type": "pong", "data": b""})
    assert seen.seen == [Invalidation()]


def test_a_failing_callback_does_not_stop_the_others() -> None:
    bus = InvalidationBus(None)
    seen = Recorder()

    def broken(change: Invalidation) -> None:
        raise RuntimeError("bug")

    bus.subscribe(broken)
    bus.subscribe(seen)
    bus.deliver(Invalidation("acme"))
    assert seen.seen == [Invalidation("acme")]


# --- publishing ----------------------------------------------------------------------


class FakeRedis:
    """Records PUBLISH; hands out in-memory pub/subs (see FakePubSub)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.publish_error: Exception | None = None
        self.pubsubs: list[FakePubSub] = []
        self.failures = 0  # pub/subs that break on their first read

    async def publish(self, channel: str, data: bytes) -> int:
        if self.publish_error is not None:
            raise self.publish_error
        self.published.append((channel, data))
        return 1

    def pubsub(self) -> FakePubSub:
        broken = self.failures > 0
        self.failures -= 1
        self.pubsubs.append(FakePubSub(broken))
        return self.pubsubs[-1]


class FakePubSub:
    def __init__(self, broken: bool) -> None:
        self.broken = broken
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closed = False

    async def subscribe(self, channel: str) -> None:
        self.messages.put_nowait({"type": "subscribe", "channel": channel.encode(), "data": 1})

    async def get_message(self, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109 (redis-py's signature)
        if self.broken:
            raise ConnectionError("redis went away")
        try:
            return await asyncio.wait_for(self.messages.get(), timeout)
        except TimeoutError:
            return None

    async def aclose(self) -> None:
        self.closed = True


async def test_publish_applies_locally_then_announces() -> None:
    redis = FakeRedis()
    bus = InvalidationBus(redis)  # type: ignore[arg-type]
    seen = Recorder()
    bus.subscribe(seen)
    await bus.publish(Invalidation("acme", "lsk_1"))
    assert seen.seen == [Invalidation("acme", "lsk_1")]  # before anything was heard back
    assert redis.published == [(INVALIDATIONS_CHANNEL, Invalidation("acme", "lsk_1").to_bytes())]


async def test_publish_never_raises_when_redis_is_down() -> None:
    redis = FakeRedis()
    redis.publish_error = ConnectionError("down")
    bus = InvalidationBus(redis)  # type: ignore[arg-type]
    seen = Recorder()
    bus.subscribe(seen)
    await bus.publish(Invalidation("acme"))
    assert seen.seen == [Invalidation("acme")]


async def test_listener_delivers_and_resubscribes_after_a_lost_connection() -> None:
    redis = FakeRedis()
    redis.failures = 1
    bus = InvalidationBus(redis)  # type: ignore[arg-type]
    bus.backoff_seconds = 0.01
    seen = Recorder()
    bus.subscribe(seen)
    bus.start()
    try:
        await seen.until(1)
        assert len(redis.pubsubs) == 2 and redis.pubsubs[0].closed  # the broken one was closed
        assert seen.seen == [Invalidation()]  # subscribed (again): everything may be stale
        redis.pubsubs[1].messages.put_nowait(
            {"type": "message", "channel": b"x", "data": Invalidation("acme").to_bytes()}
        )
        await seen.until(2)
        assert seen.seen[-1] == Invalidation("acme")
    finally:
        await bus.close()
    assert redis.pubsubs[1].closed
