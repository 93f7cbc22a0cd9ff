"""Coalesces the events of concurrent ingest requests into SQS messages.

One POST of one event must not cost one SQS call: requests of the same tenant
that arrive within a few milliseconds share a message and messages share a
``SendMessageBatch`` (≤ 10 entries, ≤ ``max_batch_bytes`` of bodies). Each
request waits until SQS has accepted the message holding its events, so a 202
means the events are in the queue. A request's events are never split across
messages unless they alone exceed one message (large bulk requests), so a
failure cannot half-accept an ordinary request.

Messages are packed by the size of their body as sent, compressed (see
``services/core/logs/envelope.py``), not by their events' JSON: a body of
≤ ``max_message_bytes`` holds 4-5x as much JSON of typical events. Requests are
grouped up to the JSON the recent compression ratio says will fit (at most
``max_message_event_bytes``), encoded once, and a body that still came out too
large is split between requests and encoded again. So a 1,000-event bulk is one
message, and several share one ``SendMessageBatch``.

Batching adapts to load: at most ``coalesce_in_flight`` coalesced sends are in
flight, and requests arriving meanwhile join the next one. A quiet service
sends after ``linger``; a busy one sends bigger batches, not more of them. (A
``SendMessageBatch`` costs ~2.5 ms of botocore CPU whatever its size: a fixed
4 ms cadence with 16 sends in flight spent half a core on it at 1,000 req/s.)
Requests too big for one message are split across their own messages and sent
at once, up to ``max_in_flight`` calls at a time.

Every ingest path hands its events to :meth:`IngestBatcher.submit`, so that is
where the tenant's ingest limits are checked (``admit``, see
``services/log/admission.py``): before anything of the request is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, TypeVar

from prometheus_client import Counter, Histogram

from services.core.errors import Unavailable
from services.core.logs.envelope import Compression, encode

log = logging.getLogger(__name__)

SQS_SENDS = Counter("logserver_ingest_sqs_batches_total", "SendMessageBatch calls", ["outcome"])
SQS_MESSAGES = Counter("logserver_ingest_sqs_messages_total", "SQS messages sent")
INGESTED = Counter("logserver_ingest_events_total", "Events accepted into the queue", ["tenant"])
SEND_LATENCY = Histogram(
    "logserver_ingest_sqs_send_seconds",
    "SendMessageBatch latency",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

_ENVELOPE_OVERHEAD = 64
T = TypeVar("T")
# The most event JSON one message holds, however well it compresses. Typical
# events make a ~75 KB body of it, so three such messages share a SendMessageBatch;
# one ReceiveMessage (10 messages) stays within the worker's default byte budget
# (LOGSERVER_WORKER_MAX_BATCH_BYTES, 6 MiB) and far below what the worker
# inflates at most (envelope.MAX_INFLATED_BYTES).
MAX_MESSAGE_EVENT_BYTES = 512 * 1024
# Messages are filled to this share of the limit at an estimated ratio, so a
# body rarely comes out too large and has to be encoded again.
_AIM = 0.9


def consecutive(
    items: Iterable[T],
    size: Callable[[T], int],
    max_bytes: int,
    *,
    start: int = 0,
    max_items: int = 0,
) -> list[list[T]]:
    """``items`` in order, in groups whose sizes (counted from ``start``) stay within
    ``max_bytes`` and, with ``max_items``, that hold at most that many; an item larger
    than ``max_bytes`` alone is a group alone."""
    groups: list[list[T]] = []
    current: list[T] = []
    total = start
    for item in items:
        n = size(item)
        if current and (total + n > max_bytes or len(current) == max_items):
            groups.append(current)
            current, total = [], start
        current.append(item)
        total += n
    if current:
        groups.append(current)
    return groups


def pack(events: list[bytes], max_bytes: int) -> list[list[bytes]]:
    """Split serialized events into groups whose message stays under ``max_bytes``."""
    return consecutive(events, _event_size, max_bytes, start=_ENVELOPE_OVERHEAD) or [[]]


def _event_size(event: bytes) -> int:
    return len(event) + 1  # and its separator


@dataclass(slots=True)
class _Request:
    """A request's events (or, when one request is split, a part of them)."""

    events: list[bytes]
    size: int  # bytes of their JSON, separators included
    future: asyncio.Future[None] | None = None
    message: _Message | None = None  # encoded alone already (too large to share one)


@dataclass
class _Message:
    tenant_id: str
    requests: list[_Request]
    events: list[bytes] = field(default_factory=list)
    raw: int = 0  # bytes of the events' JSON
    body: str = ""
    size: int = 0  # bytes of the body (UTF-8), what SQS counts

    def __post_init__(self) -> None:
        if len(self.requests) == 1:
            self.events = self.requests[0].events
        else:
            self.events = [e for req in self.requests for e in req.events]
        self.raw = sum(req.size for req in self.requests)

    def encoded(self, compression: Compression) -> _Message:
        """Build the body once and measure it."""
        self.body = encode(self.tenant_id, self.events, compression)
        # A compressed body is ASCII (str.isascii is O(1)); only v1 may need counting.
        self.size = len(self.body) if self.body.isascii() else len(self.body.encode())
        return self


def _json_bytes(events: list[bytes]) -> int:
    """Bytes of the events' JSON with their separators (map(len): no per-event frame)."""
    return sum(map(len, events)) + len(events)


_size_of = attrgetter("size")


SendBatch = Callable[[list[str]], Awaitable[list[bool]]]
# admit(tenant, events, bytes): returns if the request may be queued, raises (429) if not.
Admit = Callable[[str, int, int], Awaitable[None]]
Refund = Callable[[str, int, int], Awaitable[None]]


class IngestBatcher:
    def __init__(
        self,
        send_batch: SendBatch,
        *,
        linger: float = 0.004,
        max_message_bytes: int = 240_000,
        max_batch_bytes: int = 240_000,
        max_message_event_bytes: int = MAX_MESSAGE_EVENT_BYTES,
        max_in_flight: int = 16,
        coalesce_in_flight: int = 1,
        compression: Compression = "zstd",
        admit: Admit | None = None,
        refund: Refund | None = None,
    ) -> None:
        self._send_batch = send_batch
        self._admit = admit
        self._refund = refund
        self.linger = linger
        self.max_message_bytes = max_message_bytes
        self.max_batch_bytes = max_batch_bytes
        self.max_message_event_bytes = max_message_event_bytes
        self.compression: Compression = compression
        # Body bytes per byte of event JSON in the bodies encoded lately; 1 until
        # known, so the first messages are sized as if nothing compressed.
        self.ratio = 1.0
        self._learnt = False
        self._pending: dict[str, list[_Request]] = {}
        self._pending_bytes = 0.0  # their bodies' size, estimated at ``ratio``
        self._wake = asyncio.Event()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._coalesce_slots = asyncio.Semaphore(coalesce_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="ingest-batcher")

    async def close(self) -> None:
        """Flush what is pending, wait for sends in flight, then stop."""
        self._closed = True
        self._wake.set()
        if self._runner:
            await self._runner
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def submit(self, tenant_id: str, events: list[bytes]) -> None:
        """Return once SQS accepted every event; raise :class:`Unavailable` otherwise.

        First the tenant's ingest limits (``admit``): a refused request raises
        ``RateLimited`` (429) and nothing of it is queued. One that was admitted but
        then not queued is taken back out of the tenant's usage (``refund``).
        """
        if self._closed:
            raise Unavailable("This log service instance is shutting down; retry.", retry_after=1)
        if self._admit is None:
            await self._queue(tenant_id, events)
            return
        size = sum(map(len, events))
        await self._admit(tenant_id, len(events), size)
        try:
            await self._queue(tenant_id, events)
        except PartlyQueued as exc:
            if self._refund is not None:
                missing = [e for a, b in exc.not_accepted for e in events[a : b + 1]]
                await self._refund(tenant_id, len(missing), sum(map(len, missing)))
            raise
        except Unavailable:
            if self._refund is not None:
                await self._refund(tenant_id, len(events), size)
            raise

    async def _queue(self, tenant_id: str, events: list[bytes]) -> None:
        request = _Request(events, _json_bytes(events))
        if request.size + _ENVELOPE_OVERHEAD <= self.max_message_bytes:
            estimate = request.size * self.ratio  # fits one message even uncompressed
        else:
            # Maybe more than one message even compressed: encode it alone now.
            messages = self._encode_large(tenant_id, request)
            if len(messages) > 1:
                # Larger than one message: send this request's own messages directly.
                await self._send_messages(messages)
                return
            request.message = messages[0]
            request.message.requests = [request]
            estimate = request.message.size
        request.future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(tenant_id, []).append(request)
        self._pending_bytes += estimate
        self._wake.set()
        await request.future

    def _encode_large(self, tenant_id: str, request: _Request) -> list[_Message]:
        """The messages of one request that may not fit one: itself if it does."""
        if request.size <= self.max_message_event_bytes:
            messages = self._fit(tenant_id, [request], split_events=True)
        else:
            messages = [
                msg
                for part in pack(request.events, self._event_bytes_per_message())
                for msg in self._fit(
                    tenant_id, [_Request(part, _json_bytes(part))], split_events=True
                )
            ]
        self._learn(messages)
        return messages

    def _event_bytes_per_message(self) -> int:
        """The event JSON that should encode to a body within ``max_message_bytes``
        at the recent ratio (at most ``max_message_event_bytes``)."""
        target = int(self.max_message_bytes * _AIM / self.ratio)
        return max(1, min(self.max_message_event_bytes, target))

    def _fit(
        self, tenant_id: str, units: list[_Request], *, split_events: bool = False
    ) -> list[_Message]:
        """``units`` (in order) as messages whose bodies stay within ``max_message_bytes``.

        Encoded together first; a body that comes out too large is split between
        units, at its own ratio, and the parts encoded again. A unit too large alone
        is split between its events if ``split_events`` (a request sent on its own);
        otherwise it stays one message, which SQS will refuse.
        """
        msg = _Message(tenant_id, units).encoded(self.compression)
        if msg.size <= self.max_message_bytes:
            return [msg]
        if len(units) == 1:
            if not split_events or len(units[0].events) < 2:
                return [msg]
            units = [_Request([e], len(e) + 1) for e in units[0].events]
        # Below raw (the body is too large), so ≥ 2 groups: every round has fewer units.
        budget = int(msg.raw * self.max_message_bytes * _AIM / msg.size)
        return [
            part
            for group in consecutive(units, _size_of, budget)
            for part in self._fit(tenant_id, group, split_events=split_events)
        ]

    def _learn(self, messages: list[_Message]) -> None:
        raw = sum(msg.raw for msg in messages)
        if raw < 4096:  # a few small events say little about the next bulk
            return
        seen = sum(msg.size for msg in messages) / raw
        self.ratio = (self.ratio + seen) / 2 if self._learnt else seen
        self._learnt = True

    def _batch_is_full(self) -> bool:
        """Whether what is pending already fills a SendMessageBatch: no linger then."""
        return self._pending_bytes >= self.max_batch_bytes or len(self._pending) >= 10

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closed and not self._batch_is_full():
                await asyncio.sleep(self.linger)  # let concurrent requests join
            await self._coalesce_slots.acquire()  # requests keep joining while we wait
            self._wake.clear()
            pending, self._pending, self._pending_bytes = self._pending, {}, 0.0
            task = asyncio.create_task(self._dispatch(pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if self._closed and not self._pending:
                return

    async def _dispatch(self, pending: dict[str, list[_Request]]) -> None:
        try:
            batches = self._to_batches(self._to_messages(pending))
            await asyncio.gather(*(self._send_and_settle(batch) for batch in batches))
        except Exception:  # never leave a request waiting forever
            log.exception("batcher dispatch failed")
            for requests in pending.values():
                for req in requests:
                    if req.future is not None and not req.future.done():
                        req.future.set_exception(_queue_unavailable())
        finally:
            self._coalesce_slots.release()

    def _to_messages(self, pending: dict[str, list[_Request]]) -> list[_Message]:
        """Whole requests of one tenant per message, grouped by the JSON that should
        fit and split again where a body did not; requests encoded alone as they are."""
        target = self._event_bytes_per_message()
        ready: list[_Message] = []
        encoded: list[_Message] = []
        for tenant_id, requests in pending.items():
            to_encode: list[_Request] = []
            for req in requests:
                if req.message is None:
                    to_encode.append(req)
                else:
                    # Detached: request and message referring to each other would live
                    # (events, body) until the cycle collector's next full pass.
                    ready.append(req.message)
                    req.message = None
            for group in consecutive(to_encode, _size_of, target):
                encoded += self._fit(tenant_id, group)
        self._learn(encoded)
        return encoded + ready

    def _to_batches(self, messages: list[_Message]) -> list[list[_Message]]:
        """SendMessageBatch calls: at most 10 entries, ``max_batch_bytes`` of bodies."""
        return consecutive(messages, _size_of, self.max_batch_bytes, max_items=10)

    async def _send_and_settle(self, batch: list[_Message]) -> None:
        try:
            results = await self._send_with_retry(batch)
        except Exception as exc:
            log.warning("queue send failed", extra={"error": str(exc)[:300]})
            results = [False] * len(batch)
        for msg, ok in zip(batch, results, strict=True):
            if ok:
                INGESTED.labels(msg.tenant_id).inc(len(msg.events))
            for req in msg.requests:
                if req.future is None or req.future.done():
                    continue
                if ok:
                    req.future.set_result(None)
                else:
                    req.future.set_exception(_queue_unavailable())

    async def _send_messages(self, messages: list[_Message]) -> None:
        """Send one request's messages (its events in order, split); all or raise.

        Messages SQS accepted cannot be taken back: if some were, the error says which
        events will be stored (:class:`PartlyQueued`), so the client does not resend
        them believing nothing was accepted.
        """
        total = sum(len(msg.events) for msg in messages)
        missing: list[tuple[int, int]] = []  # [start, end) of the events not queued
        start = 0
        for batch in self._to_batches(messages):
            async with self._in_flight:
                try:
                    results = await self._send_with_retry(batch)
                except Exception:
                    log.warning("queue send failed", exc_info=True)
                    results = [False] * len(batch)
            for msg, ok in zip(batch, results, strict=True):
                end = start + len(msg.events)
                if ok:
                    INGESTED.labels(msg.tenant_id).inc(len(msg.events))
                elif missing and missing[-1][1] == start:
                    missing[-1] = (missing[-1][0], end)
                else:
                    missing.append((start, end))
                start = end
            if missing:
                break  # later messages are not sent: the rest is missing
        if not missing:
            return
        if start < total:
            if missing[-1][1] == start:
                missing[-1] = (missing[-1][0], total)
            else:
                missing.append((start, total))
        not_queued = sum(end - begin for begin, end in missing)
        if not_queued == total:
            raise _queue_unavailable()
        raise PartlyQueued(total - not_queued, total, missing)

    async def _send_with_retry(self, batch: list[_Message], attempts: int = 3) -> list[bool]:
        """Send; entries SQS reports as failed are retried, the rest are not re-sent."""
        results = [False] * len(batch)
        todo = list(range(len(batch)))
        for attempt in range(attempts):
            bodies = [batch[i].body for i in todo]
            start = time.perf_counter()
            oks = await self._send_batch(bodies)
            SEND_LATENCY.observe(time.perf_counter() - start)
            SQS_SENDS.labels("ok" if all(oks) else "partial").inc()
            SQS_MESSAGES.inc(sum(oks))
            for i, ok in zip(todo, oks, strict=True):
                results[i] = ok
            todo = [i for i in todo if not results[i]]
            if not todo:
                break
            if attempt + 1 < attempts:
                await asyncio.sleep(0.05 * (attempt + 1))
        return results


class PartlyQueued(Unavailable):
    """503 for a request split over several queue messages of which only some were
    accepted: those events will be stored, the others not. A retry with the same event
    ids stores each event once (the storage key is the tenant and the id)."""

    def __init__(self, accepted: int, total: int, missing: list[tuple[int, int]]) -> None:
        ranges = ", ".join(f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in missing)
        super().__init__(
            f"The queue accepted {accepted} of this request's {total} events (they will be "
            f"stored) but not the events at index {ranges}. Resend only those, or the "
            "whole request with the same event ids (an id is stored once).",
            retry_after=2,
        )
        self.accepted = accepted
        self.not_accepted = [[a, b - 1] for a, b in missing]  # first and last index

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().to_problem(instance)
        body["accepted"] = self.accepted
        body["not_accepted"] = self.not_accepted
        return body


def _queue_unavailable() -> Unavailable:
    return Unavailable(
        "The queue did not accept the events, so nothing of this request was accepted. "
        "Retry after a few seconds (send event ids to make retries idempotent).",
        retry_after=2,
    )


def sqs_sender(client: Any, queue_url: Callable[[], Awaitable[str]]) -> SendBatch:
    """Adapt an aioboto3 SQS client to the batcher's ``send_batch`` callable."""

    async def send(bodies: list[str]) -> list[bool]:
        url = await queue_url()
        resp = await client.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)],
        )
        ok = {int(e["Id"]) for e in resp.get("Successful", [])}
        for failure in resp.get("Failed", []):
            log.warning(
                "queue rejected a message",
                extra={"code": failure.get("Code"), "reason": failure.get("Message")},
            )
        return [i in ok for i in range(len(bodies))]

    return send
