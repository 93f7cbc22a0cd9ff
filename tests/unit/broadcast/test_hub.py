"""Hub.dispatch fan-out: per-subscriber filters, shared frames, slow clients, replay seams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from services.broadcast.hub import Hub, Subscriber, events_frame
from services.core.logs.filters import LogFilter


def event(event_id: str, level: str = "INFO", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "timestamp": "2026-01-31T12:00:00.000Z",
        "received_at": "2026-01-31T12:00:00.100Z",
        "tenant_id": "acme",
        "level": level,
        "message": f"message {event_id}",
        **extra,
    }


EVENTS = [event("e1", "INFO"), event("e2", "ERROR"), event("e3", "DEBUG"), event("e4", "ERROR")]


class Slow:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def sub(flt: LogFilter | None = None, maxsize: int = 100, tenant: str = "acme") -> Subscriber:
    return Subscriber(tenant, flt or LogFilter(), asyncio.Queue(maxsize=maxsize), Slow())


def drain(s: Subscriber) -> list[str]:
    out = []
    while not s.queue.empty():
        out.append(s.queue.get_nowait())
    return out


def ids(frame: str) -> list[str]:
    doc = json.loads(frame)
    assert doc["type"] == "events"
    assert doc["replay"] is False
    return [e["id"] for e in doc["data"]]


# --- events_frame ------------------------------------------------------------------------


@pytest.mark.parametrize("replay", [True, False])
def test_events_frame_is_valid_json(replay):
    encoded = [orjson.dumps(e) for e in EVENTS]
    frame = events_frame(encoded, replay=replay)
    assert isinstance(frame, str)
    assert json.loads(frame) == {"type": "events", "replay": replay, "data": EVENTS}


def test_events_frame_empty():
    assert json.loads(events_frame([], replay=True)) == {
        "type": "events",
        "replay": True,
        "data": [],
    }


# --- dispatch ---------------------------------------------------------------------------


def test_filter_applied_per_subscriber():
    errors = sub(LogFilter(levels=("ERROR",)))
    everything = sub()
    at_least_info = sub(LogFilter(min_level="INFO"))
    Hub.dispatch({errors, everything, at_least_info}, EVENTS)
    assert [ids(f) for f in drain(errors)] == [["e2", "e4"]]
    assert [ids(f) for f in drain(everything)] == [["e1", "e2", "e3", "e4"]]
    assert [ids(f) for f in drain(at_least_info)] == [["e1", "e2", "e4"]]


def test_frame_carries_the_events_unchanged():
    s = sub()
    Hub.dispatch({s}, EVENTS)
    assert json.loads(drain(s)[0])["data"] == EVENTS


def test_no_match_queues_nothing():
    s = sub(LogFilter(levels=("CRITICAL",)))
    Hub.dispatch({s}, EVENTS)
    assert s.queue.empty()
    assert not s.slow


def test_equal_filters_share_one_frame_object():
    a = sub(LogFilter(levels=("ERROR",), exact=(("service", "api"),)))
    b = sub(LogFilter(levels=("ERROR",), exact=(("service", "api"),)))
    c = sub(LogFilter(levels=("ERROR",)))
    assert a.filter == b.filter and a.filter is not b.filter
    evs = [event("x1", "ERROR", service="api"), event("x2", "ERROR", service="db")]
    Hub.dispatch({a, b, c}, evs)
    (fa,), (fb,), (fc,) = drain(a), drain(b), drain(c)
    assert fa is fb  # built once
    assert ids(fa) == ["x1"]
    assert ids(fc) == ["x1", "x2"]


def test_full_queue_marks_slow_once_and_others_still_receive():
    slow = sub(maxsize=1)
    fast = sub(maxsize=10)
    Hub.dispatch({slow, fast}, EVENTS[:1])  # fills the slow queue
    assert not slow.slow
    Hub.dispatch({slow, fast}, EVENTS[1:2])
    assert slow.slow
    assert slow.on_slow.calls == 1
    Hub.dispatch({slow, fast}, EVENTS[2:3])
    assert slow.on_slow.calls == 1  # told once
    assert [ids(f) for f in drain(slow)] == [["e1"]]
    assert [ids(f) for f in drain(fast)] == [["e1"], ["e2"], ["e3"]]
    assert fast.on_slow.calls == 0


def test_seen_ids_skip_replayed_events():
    replayed = sub()
    replayed.seen_ids = {"e1", "e3"}
    plain = sub()
    Hub.dispatch({replayed, plain}, EVENTS)
    assert [ids(f) for f in drain(replayed)] == [["e2", "e4"]]
    assert [ids(f) for f in drain(plain)] == [["e1", "e2", "e3", "e4"]]
    Hub.dispatch({replayed}, [event("e1"), event("e3")])
    assert replayed.queue.empty()  # all already seen: no empty frame


def test_seen_ids_that_do_not_overlap_use_the_shared_frame():
    a = sub()
    a.seen_ids = {"old"}
    b = sub()
    Hub.dispatch({a, b}, EVENTS)
    (fa,), (fb,) = drain(a), drain(b)
    assert fa is fb


def test_held_events_collected_during_replay_then_released():
    s = sub(LogFilter(levels=("ERROR", "INFO")))
    s.held = []
    Hub.dispatch({s}, EVENTS)
    assert s.queue.empty()  # nothing framed while held
    assert [event_id for event_id, _ in s.held] == ["e1", "e2", "e4"]
    s.seen_ids = {"e2"}  # the replay read from MongoDB already had e2
    released = s.release()
    assert s.held is None
    assert [orjson.loads(b)["id"] for b in released] == ["e1", "e4"]
    assert orjson.loads(released[0]) == EVENTS[0]
    # after release, live events are framed again (and seen ids still skipped)
    Hub.dispatch({s}, [event("e2", "ERROR"), event("e5", "ERROR")])
    assert [ids(f) for f in drain(s)] == [["e5"]]


def test_release_without_hold():
    s = sub()
    assert s.release() == []
    assert s.held is None


def test_holding_too_much_marks_slow():
    s = sub(maxsize=1)
    s.held = []
    Hub.dispatch({s}, [event(f"h{i}") for i in range(1000)])
    assert not s.slow
    Hub.dispatch({s}, [event("h1000"), event("h1001")])
    assert s.slow
    assert s.on_slow.calls == 1
    Hub.dispatch({s}, [event("h1002")])
    assert s.on_slow.calls == 1


def test_hold_and_live_subscribers_together():
    holding = sub()
    holding.held = []
    live = sub()
    Hub.dispatch({holding, live}, EVENTS)
    assert len(holding.held) == 4 and holding.queue.empty()
    assert [ids(f) for f in drain(live)] == [["e1", "e2", "e3", "e4"]]


async def test_on_message_routes_by_channel_and_ignores_others():
    hub = Hub(client=None)  # no Redis: only the message handler is exercised
    acme, other = sub(tenant="acme"), sub(tenant="other")
    hub._subs = {"acme": {acme}, "other": {other}}
    hub._channels.plan({"logs:acme", "logs:other"})
    hub._on_message({"type": "subscribe", "channel": b"logs:acme", "data": 1})
    assert hub._channels.live("logs:acme").is_set()
    assert not hub._channels.live("logs:other").is_set()
    data = b"[" + b",".join(orjson.dumps(e) for e in EVENTS[:2]) + b"]"
    hub._on_message({"type": "message", "channel": b"logs:acme", "data": data})
    hub._on_message({"type": "message", "channel": b"logs:acme", "data": b"{not json"})
    hub._on_message({"type": "message", "channel": b"elsewhere", "data": data})
    hub._on_message({"type": "message", "channel": b"logs:nobody", "data": data})
    assert [ids(f) for f in drain(acme)] == [["e1", "e2"]]
    assert other.queue.empty()


# --- subscriptions: the reader against an in-memory pub/sub ---------------------------


class FakePubSub:
    """Redis pub/sub semantics in memory: a reply per channel per command, in order."""

    def __init__(self, activity: asyncio.Event) -> None:
        self.commands: list[tuple[str, tuple[str, ...]]] = []
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.hold_replies = False  # True: replies are queued only by release()
        self._held: list[dict[str, Any]] = []
        self.activity = activity  # set on every command, and when the reader asks for more
        self.delivered = 0  # replies the reader has taken
        self.reading = False  # the reader is waiting for the next reply (done with the last)

    def _reply(self, kind: str, channels: tuple[str, ...]) -> None:
        for channel in channels:
            reply = {"type": kind, "channel": channel.encode(), "data": 1}
            if self.hold_replies:
                self._held.append(reply)
            else:
                self.replies.put_nowait(reply)

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self.replies.put_nowait(self._held.pop(0))

    async def subscribe(self, *channels: str) -> None:
        self.commands.append(("subscribe", channels))
        self._reply("subscribe", channels)
        self.activity.set()

    async def unsubscribe(self, *channels: str) -> None:
        self.commands.append(("unsubscribe", channels))
        self._reply("unsubscribe", channels)
        self.activity.set()

    async def get_message(self, timeout: float) -> dict[str, Any] | None:  # noqa: ASYNC109 (redis-py's signature)
        self.reading = True
        self.activity.set()
        try:
            message = await asyncio.wait_for(self.replies.get(), timeout)
        except TimeoutError:
            return None
        finally:
            self.reading = False
        self.delivered += 1
        return message

    async def aclose(self) -> None:
        pass


class FakeRedis:
    def __init__(self) -> None:
        self.pubsubs: list[FakePubSub] = []
        self.activity = asyncio.Event()

    def pubsub(self) -> FakePubSub:
        self.pubsubs.append(FakePubSub(self.activity))
        return self.pubsubs[-1]


async def until(hub: Hub, condition: Callable[[], bool], within: float = 1.0) -> None:
    """Wait until ``condition`` holds, re-checking whenever the reader sends a command."""
    activity = hub.redis.activity
    async with asyncio.timeout(within):
        while not condition():
            activity.clear()
            await activity.wait()


@pytest.fixture
async def hub() -> Any:
    hub = Hub(FakeRedis())  # type: ignore[arg-type]
    hub.poll_seconds = 0.01
    hub.start()
    yield hub
    await hub.close()


def commands(hub: Hub) -> list[tuple[str, tuple[str, ...]]]:
    return [c for c in hub.redis.pubsubs[-1].commands if c[1] != ("logserver:broadcast-idle",)]


async def test_first_client_of_a_tenant_waits_for_the_subscription(hub: Hub) -> None:
    await asyncio.wait_for(hub.add(sub(tenant="acme")), 1)
    assert commands(hub) == [("subscribe", ("logs:acme",))]


async def test_tenant_readded_before_the_reader_noticed_streams_at_once(hub: Hub) -> None:
    """The reconnect bug: last client leaves, a new one arrives between two polls."""
    first = sub(tenant="acme")
    await asyncio.wait_for(hub.add(first), 1)
    await hub.remove(first)  # no await point inside: the reader has not seen it
    again = sub(tenant="acme")
    await asyncio.wait_for(hub.add(again, confirm_within=5), 1)  # still subscribed: at once
    assert commands(hub) == [("subscribe", ("logs:acme",))]
    data = orjson.dumps([event("live")])
    hub._on_message({"type": "message", "channel": b"logs:acme", "data": data})
    assert [ids(f) for f in drain(again)] == [["live"]]


async def test_tenant_readded_after_the_reader_unsubscribed_resubscribes(hub: Hub) -> None:
    first = sub(tenant="acme")
    await asyncio.wait_for(hub.add(first), 1)
    await hub.remove(first)
    await until(hub, lambda: ("unsubscribe", ("logs:acme",)) in commands(hub))
    await asyncio.wait_for(hub.add(sub(tenant="acme")), 1)
    assert commands(hub) == [
        ("subscribe", ("logs:acme",)),
        ("unsubscribe", ("logs:acme",)),
        ("subscribe", ("logs:acme",)),
    ]


async def test_reply_to_an_earlier_subscribe_does_not_confirm_a_later_one(hub: Hub) -> None:
    """SUBSCRIBE, UNSUBSCRIBE, SUBSCRIBE: only the last reply proves the channel is live
    again; confirming on the first would open a gap before the `tail=N` replay."""
    pubsub = hub.redis.pubsubs[-1]
    pubsub.hold_replies = True
    first = sub(tenant="acme")
    adding = asyncio.ensure_future(hub.add(first))
    await until(hub, lambda: len(commands(hub)) == 1)
    await hub.remove(first)
    await until(hub, lambda: len(commands(hub)) == 2)  # the reader unsubscribed
    second = sub(tenant="acme")
    waiting = asyncio.ensure_future(hub.add(second, confirm_within=5))
    await until(hub, lambda: len(commands(hub)) == 3)  # ...and subscribed again
    taken = pubsub.delivered
    pubsub.release(2)  # the replies to the first SUBSCRIBE and to the UNSUBSCRIBE
    # the reader handled both and waits for the next reply: only then is "not yet" a fact
    await until(hub, lambda: pubsub.delivered == taken + 2 and pubsub.reading)
    assert not waiting.done()
    pubsub.release(1)  # the reply to the second SUBSCRIBE
    await asyncio.wait_for(waiting, 1)
    adding.cancel()


async def test_lost_connection_resubscribes_and_confirms_again(hub: Hub) -> None:
    await asyncio.wait_for(hub.add(sub(tenant="acme")), 1)
    broken = hub.redis.pubsubs[-1]

    async def fail(timeout: float) -> None:  # noqa: ASYNC109 (redis-py's signature)
        raise ConnectionError("redis went away")

    broken.get_message = fail  # type: ignore[method-assign]
    await until(hub, lambda: len(hub.redis.pubsubs) == 2 and bool(commands(hub)), within=2)
    assert commands(hub) == [("subscribe", ("logs:acme",))]
    await asyncio.wait_for(hub.add(sub(tenant="acme")), 1)
