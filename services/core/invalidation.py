"""Tells every process at once that tenants or API keys changed (Redis pub/sub).

Whatever a process caches about a tenant or an API key (its credential
status, a tenant's policy) would otherwise stay stale until its own expiry.
The service that writes the change calls :meth:`InvalidationBus.publish`
after its MongoDB write; every process ``subscribe``s callbacks, which the
bus calls for each change it hears of on channel ``logserver:credentials``.

A message lost while the subscription was down cannot be replayed, so each
time the subscription is (re)established the callbacks are told that
*everything* may have changed. A cache's own expiry stays the bound for
changes the bus could not deliver (Redis unreachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as redis

INVALIDATIONS_CHANNEL = "logserver:credentials"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Invalidation:
    """What changed: one API key (``key_id``) of ``tenant``, the tenant itself
    (``key_id`` None: status, retention, creation), or — both None — possibly
    anything (the subscription was interrupted)."""

    tenant: str | None = None
    key_id: str | None = None

    @property
    def everything(self) -> bool:
        return self.tenant is None

    def affects_tenant(self, tenant: str) -> bool:
        """Whether something cached about ``tenant`` itself may be stale."""
        return self.tenant is None or (self.tenant == tenant and self.key_id is None)

    def affects_key(self, key_id: str, tenant: str) -> bool:
        """Whether the status of API key ``key_id`` of ``tenant`` may be stale."""
        return self.affects_tenant(tenant) or self.key_id == key_id

    def to_bytes(self) -> bytes:
        return orjson.dumps({"tenant": self.tenant, "key_id": self.key_id})

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Invalidation:
        """Decode a message; anything unreadable counts as 'everything changed'."""
        try:
            doc = orjson.loads(data)
            tenant, key_id = doc.get("tenant"), doc.get("key_id")
        except (orjson.JSONDecodeError, AttributeError):
            return cls()
        if not isinstance(tenant, str):
            return cls()
        return cls(tenant, key_id if isinstance(key_id, str) else None)


Callback = Callable[[Invalidation], None]


class InvalidationBus:
    """Publishes and delivers :class:`Invalidation` messages.

    Callbacks run synchronously in the order they subscribed, in the listener
    task (or in the publisher's, for its own process): they must be quick and
    not block; one that raises is logged and does not stop the others.
    """

    def __init__(self, client: redis.Redis | None, channel: str = INVALIDATIONS_CHANNEL) -> None:
        self.client = client
        self.channel = channel
        self._callbacks: dict[int, Callback] = {}
        self._next_id = 0
        self._listener: asyncio.Task[None] | None = None
        self.backoff_seconds = 0.2  # first wait before resubscribing after Redis was lost

    # --- subscribers -------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` for every change; returns the function that unsubscribes."""
        token = self._next_id
        self._next_id += 1
        self._callbacks[token] = callback

        def unsubscribe() -> None:
            self._callbacks.pop(token, None)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        return bool(self._callbacks)

    def deliver(self, change: Invalidation) -> None:
        for callback in list(self._callbacks.values()):
            try:
                callback(change)
            except Exception:
                log.exception("invalidation callback failed")

    # --- publishing --------------------------------------------------------------

    async def publish(self, change: Invalidation) -> None:
        """Announce a change after it was written. This process applies it before
        returning; the others as soon as Redis delivers it. Never raises: the write
        is done, and should Redis be down, every cache's expiry still bounds it."""
        self.deliver(change)
        if self.client is None:
            return
        try:
            await asyncio.wait_for(self.client.publish(self.channel, change.to_bytes()), 2.0)
        except Exception as exc:
            log.warning(
                "could not publish an invalidation; caches expire on their own",
                extra={"error": str(exc), "tenant": change.tenant, "key_id": change.key_id},
            )

    # --- listening ---------------------------------------------------------------

    def start(self) -> None:
        if self._listener is None and self.client is not None:
            self._listener = asyncio.create_task(self._listen_forever(), name="invalidations")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None

    async def _listen_forever(self) -> None:
        assert self.client is not None
        backoff = self.backoff_seconds
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    # A timeout (not a blocking read) lets the client's health checks run.
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self.on_message(message)
                        backoff = self.backoff_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("invalidations lost; resubscribing", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            # (Re)subscribed — at start, after a reconnect of ours or one redis-py made
            # by itself: whatever was published meanwhile is lost.
            self.deliver(Invalidation())
        elif kind == "message":
            self.deliver(Invalidation.from_bytes(message["data"]))
