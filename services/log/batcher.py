"""Coalesces the events of concurrent ingest requests into SQS messages.

One POST of one event must not cost one SQS call: requests of the same tenant
that arrive within a few milliseconds share a message (≤ ``max_message_bytes``)
and messages share a ``SendMessageBatch`` (≤ 10 entries, ≤ ``max_batch_bytes``).
Each request waits until SQS has accepted the message holding its events, so
a 202 means the events are in the queue. A request's events are never split
across messages unless they alone exceed one message (large bulk requests),
so a failure cannot half-accept an ordinary request.

Batching adapts to load: at most ``coalesce_in_flight`` coalesced sends are in
flight, and requests arriving meanwhile join the next one. A quiet service
sends after ``linger``; a busy one sends bigger batches, not more of them. (A
``SendMessageBatch`` costs ~2.5 ms of botocore CPU whatever its size: a fixed
4 ms cadence with 16 sends in flight spent half a core on it at 1,000 req/s.)
Requests too big to share a message are sent at once, up to
``max_in_flight`` calls at a time.

Every ingest path hands its events to :meth:`IngestBatcher.submit`, so that is
where the tenant's ingest limits are checked (``admit``, see
``services/log/admission.py``): before anything of the request is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram

from services.core.errors import Unavailable
from services.core.logs.envelope import encode

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


def pack(events: list[bytes], max_bytes: int) -> list[list[bytes]]:
    """Split serialized events into groups whose message stays under ``max_bytes``."""
    groups: list[list[bytes]] = [[]]
    size = _ENVELOPE_OVERHEAD
    for ev in events:
        if groups[-1] and size + len(ev) + 1 > max_bytes:
            groups.append([])
            size = _ENVELOPE_OVERHEAD
        groups[-1].append(ev)
        size += len(ev) + 1
    return groups


@dataclass
class _Request:
    events: list[bytes]
    size: int
    future: asyncio.Future[None]


@dataclass
class _Message:
    tenant_id: str
    events: list[bytes] = field(default_factory=list)
    size: int = _ENVELOPE_OVERHEAD
    requests: list[_Request] = field(default_factory=list)
    body: str = ""

    def encoded(self) -> _Message:
        """Build the body once; ``size`` becomes its length (≤ the raw size)."""
        self.body = encode(self.tenant_id, self.events)
        self.size = len(self.body)
        return self


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
        max_in_flight: int = 16,
        coalesce_in_flight: int = 1,
        admit: Admit | None = None,
        refund: Refund | None = None,
    ) -> None:
        self._send_batch = send_batch
        self._admit = admit
        self._refund = refund
        self.linger = linger
        self.max_message_bytes = max_message_bytes
        self.max_batch_bytes = max_batch_bytes
        self._pending: dict[str, list[_Request]] = {}
        self._pending_bytes = 0
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
        size = sum(len(e) for e in events)
        await self._admit(tenant_id, len(events), size)
        try:
            await self._queue(tenant_id, events)
        except PartlyQueued as exc:
            if self._refund is not None:
                missing = [e for a, b in exc.not_accepted for e in events[a : b + 1]]
                await self._refund(tenant_id, len(missing), sum(len(e) for e in missing))
            raise
        except Unavailable:
            if self._refund is not None:
                await self._refund(tenant_id, len(events), size)
            raise

    async def _queue(self, tenant_id: str, events: list[bytes]) -> None:
        groups = pack(events, self.max_message_bytes)
        if len(groups) > 1:
            # Larger than one message: send this request's own messages directly.
            await self._send_messages([_Message(tenant_id, g).encoded() for g in groups])
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        size = sum(len(e) + 1 for e in events)
        self._pending.setdefault(tenant_id, []).append(_Request(events, size, future))
        self._pending_bytes += size
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._closed and self._pending_bytes < self.max_batch_bytes:
                await asyncio.sleep(self.linger)  # let concurrent requests join
            await self._coalesce_slots.acquire()  # requests keep joining while we wait
            self._wake.clear()
            pending, self._pending, self._pending_bytes = self._pending, {}, 0
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
                    if not req.future.done():
                        req.future.set_exception(_queue_unavailable())
        finally:
            self._coalesce_slots.release()

    def _to_messages(self, pending: dict[str, list[_Request]]) -> list[_Message]:
        messages: list[_Message] = []
        for tenant_id, requests in pending.items():
            current = _Message(tenant_id)
            for req in requests:
                if current.requests and current.size + req.size > self.max_message_bytes:
                    messages.append(current)
                    current = _Message(tenant_id)
                current.events.extend(req.events)
                current.size += req.size
                current.requests.append(req)
            messages.append(current)
        return [msg.encoded() for msg in messages]

    def _to_batches(self, messages: list[_Message]) -> list[list[_Message]]:
        batches: list[list[_Message]] = []
        current: list[_Message] = []
        size = 0
        for msg in messages:
            if current and (len(current) == 10 or size + msg.size > self.max_batch_bytes):
                batches.append(current)
                current, size = [], 0
            current.append(msg)
            size += msg.size
        if current:
            batches.append(current)
        return batches

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
                if req.future.done():
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
