"""Fan-out from Redis to WebSocket clients.

One Redis connection per process subscribes to ``logs:{tenant}`` only while
this process has clients of that tenant. Each published batch is decoded
once; each event is serialized once; clients with the same filter share one
frame. Every client has a bounded queue: the Redis reader never waits for a
client, and a client whose queue is full is marked slow and dropped.

A new client waits until Redis confirmed its tenant's subscription (so a
``tail=N`` replay read afterwards leaves no gap); when the channel is still
subscribed, because the tenant's last client left a moment ago, it is live
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as redis
from prometheus_client import Counter, Gauge

from services.core.logs.filters import LogFilter

log = logging.getLogger(__name__)

CLIENTS = Gauge("logserver_stream_clients", "Open WebSocket tail connections")
TENANTS = Gauge("logserver_stream_tenants", "Tenants this process is subscribed to")
FRAMES = Counter("logserver_stream_frames_total", "Event frames queued for clients")
SLOW = Counter("logserver_stream_slow_consumers_total", "Clients dropped for falling behind")
REDIS_RECONNECTS = Counter("logserver_stream_redis_reconnects_total", "Redis re-subscriptions")

CHANNEL_PREFIX = "logs:"
IDLE_CHANNEL = "logserver:broadcast-idle"


def events_frame(encoded: list[bytes], *, replay: bool) -> str:
    flag = b"true" if replay else b"false"
    return (b'{"type":"events","replay":%s,"data":[%s]}' % (flag, b",".join(encoded))).decode()


@dataclass(eq=False)
class Subscriber:
    tenant: str
    filter: LogFilter
    queue: asyncio.Queue[str]
    on_slow: Callable[[], None]
    seen_ids: set[str] = field(default_factory=set)  # replayed ids, skipped once live
    # While `tail=N` is read from MongoDB, live events are held here (not framed), so
    # the ones the replay already holds can be dropped at the seam.
    held: list[tuple[str, bytes]] | None = None
    slow: bool = False

    def hold(self, picked: list[tuple[str, bytes]]) -> None:
        assert self.held is not None
        self.held.extend(picked)
        if len(self.held) > self.queue.maxsize * 1000 and not self.slow:
            self.slow = True
            SLOW.inc()
            self.on_slow()

    def release(self) -> list[bytes]:
        """End the hold: the held events the replay did not already contain."""
        held, self.held = self.held or [], None
        return [enc for event_id, enc in held if event_id not in self.seen_ids]

    def offer(self, frame: str) -> None:
        if self.slow:
            return
        try:
            self.queue.put_nowait(frame)
            FRAMES.inc()
        except asyncio.QueueFull:
            self.slow = True
            SLOW.inc()
            self.on_slow()


class Subscriptions:
    """Which channels the reader asked Redis for, and which Redis confirmed.

    Pure bookkeeping (no I/O), kept by the hub rather than by the reader task so
    a client arriving for a channel that is still subscribed is confirmed at
    once. Redis answers commands in order, so a channel is live once the reply
    to its *latest* SUBSCRIBE was read and no UNSUBSCRIBE was sent since.
    """

    def __init__(self) -> None:
        self.requested: set[str] = set()  # SUBSCRIBE sent, no UNSUBSCRIBE since
        self._pending: dict[str, int] = {}  # SUBSCRIBE replies not read yet
        self._live: dict[str, asyncio.Event] = {}

    def live(self, channel: str) -> asyncio.Event:
        """Set while ``channel`` is confirmed subscribed; what a new client waits on."""
        event = self._live.get(channel)
        if event is None:
            event = self._live[channel] = asyncio.Event()
        return event

    def plan(self, wanted: set[str]) -> tuple[set[str], set[str]]:
        """The (subscribe, unsubscribe) commands that reach ``wanted``; recorded as sent."""
        to_subscribe, to_unsubscribe = wanted - self.requested, self.requested - wanted
        for channel in to_subscribe:
            self._pending[channel] = self._pending.get(channel, 0) + 1
        self.requested = set(wanted)
        # Only a wanted channel can have a client waiting on its event.
        for channel in set(self._live) - wanted:
            self._live.pop(channel).clear()
        return to_subscribe, to_unsubscribe

    def confirmed(self, channel: str) -> None:
        """Redis replied to a SUBSCRIBE of ``channel``."""
        left = self._pending.pop(channel, 0) - 1
        if left > 0:
            self._pending[channel] = left  # a later SUBSCRIBE is still unanswered
        elif channel in self.requested:
            self.live(channel).set()

    def reset(self) -> None:
        """The connection was lost: nothing is subscribed any more."""
        self.requested.clear()
        self._pending.clear()
        for event in self._live.values():
            event.clear()


class Hub:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._subs: dict[str, set[Subscriber]] = {}
        self._channels = Subscriptions()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self.poll_seconds = 0.05  # bounds how long a new tenant waits for its subscription
        self._backoff_seconds = 0.2  # first wait before resubscribing after Redis was lost

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="redis-fanout")

    async def close(self) -> None:
        self._closed = True
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    # --- clients -------------------------------------------------------------------

    async def add(self, sub: Subscriber, confirm_within: float = 10.0) -> None:
        """Register a client; returns once Redis confirmed the tenant's subscription,
        so a replay read from MongoDB afterwards leaves no gap before live events.
        A channel still subscribed (its tenant's last client just left) is live at once."""
        if sub.tenant not in self._subs:
            self._subs[sub.tenant] = set()
            TENANTS.set(len(self._subs))
        self._subs[sub.tenant].add(sub)
        CLIENTS.inc()
        live = self._channels.live(CHANNEL_PREFIX + sub.tenant)
        await asyncio.wait_for(live.wait(), confirm_within)

    async def remove(self, sub: Subscriber) -> None:
        subs = self._subs.get(sub.tenant)
        if not subs or sub not in subs:
            return
        subs.discard(sub)
        CLIENTS.dec()
        if not subs:
            del self._subs[sub.tenant]  # the reader unsubscribes on its next turn
            TENANTS.set(len(self._subs))

    # --- redis ---------------------------------------------------------------------

    async def _read_forever(self) -> None:
        """The only task that touches the pub/sub connection: it applies subscription
        changes between reads, so no command races another on that connection."""
        backoff = self._backoff_seconds
        while not self._closed:
            try:
                self._pubsub = self.redis.pubsub()
                # A placeholder channel keeps the connection in subscribed mode while idle.
                await self._pubsub.subscribe(IDLE_CHANNEL)
                backoff = self._backoff_seconds
                while True:
                    wanted = {CHANNEL_PREFIX + t for t in self._subs}
                    to_subscribe, to_unsubscribe = self._channels.plan(wanted)
                    if to_subscribe:
                        await self._pubsub.subscribe(*to_subscribe)
                    if to_unsubscribe:
                        await self._pubsub.unsubscribe(*to_unsubscribe)
                    message = await self._pubsub.get_message(timeout=self.poll_seconds)
                    if message is not None:
                        self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("redis fan-out lost; resubscribing", extra={"error": str(exc)})
                REDIS_RECONNECTS.inc()
                self._channels.reset()
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind == "subscribe":
            if channel:
                self._channels.confirmed(channel)
            return
        if kind != "message" or not channel or not channel.startswith(CHANNEL_PREFIX):
            return
        subs = self._subs.get(channel[len(CHANNEL_PREFIX) :])
        if not subs:
            return
        try:
            events = orjson.loads(message["data"])
        except orjson.JSONDecodeError:
            log.warning("undecodable fan-out message", extra={"channel": channel})
            return
        self.dispatch(subs, events)

    @staticmethod
    def dispatch(subs: set[Subscriber], events: list[dict[str, Any]]) -> None:
        encoded = [orjson.dumps(e) for e in events]  # once per process, not per client
        frames: dict[LogFilter, tuple[list[int], str | None]] = {}
        for sub in list(subs):
            cached = frames.get(sub.filter)
            if cached is None:
                picked = [i for i, e in enumerate(events) if sub.filter.matches(e)]
                frame = events_frame([encoded[i] for i in picked], replay=False) if picked else None
                cached = frames[sub.filter] = (picked, frame)
            picked, frame = cached
            if frame is None:
                continue
            if sub.held is not None:
                sub.hold([(events[i]["id"], encoded[i]) for i in picked])
                continue
            if sub.seen_ids:
                fresh = [i for i in picked if events[i]["id"] not in sub.seen_ids]
                if len(fresh) != len(picked):
                    if fresh:
                        sub.offer(events_frame([encoded[i] for i in fresh], replay=False))
                    continue
            sub.offer(frame)
