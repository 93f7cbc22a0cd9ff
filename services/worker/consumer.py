"""The queue consumer: receive → store once → delete → publish.

At-least-once in, exactly-once stored: every event's ``_id`` is
``{tenant}:{id}``, so a redelivered message inserts nothing twice and its
duplicate-key errors count as success. A message is deleted only when all of
its events are stored; anything else stays in the queue and comes back after
its visibility timeout, until SQS moves it to the dead-letter queue. A message
that fails on its last allowed receive (the queue's redrive maxReceiveCount) is
counted as dead-lettered, so what lands there shows in /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
import redis.asyncio as redis
from bson.errors import InvalidDocument
from prometheus_client import Counter, Histogram
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from services.core.clients import SqsQueues
from services.core.logs import envelope
from services.core.logs.model import LOGS
from services.core.logs.rollups import RollupWriter
from services.worker.budget import ByteBudget
from services.worker.live import LivePublisher
from services.worker.messages import (
    Decoded,
    PoisonMessage,
    open_message,
    parse_message,
    receive_count,
)

log = logging.getLogger(__name__)


RECEIVED = Counter("logserver_worker_messages_received_total", "Queue messages received")
STORED = Counter("logserver_worker_events_stored_total", "Events newly stored")
DUPLICATES = Counter("logserver_worker_events_duplicate_total", "Events already stored")
FAILED = Counter("logserver_worker_messages_failed_total", "Messages left for redelivery", ["why"])
DEAD = Counter(
    "logserver_worker_messages_dead_lettered_total",
    "Messages that failed on their last allowed receive: SQS moves them to the DLQ",
)
STORE_LATENCY = Histogram(
    "logserver_worker_store_seconds",
    "insert_many latency per batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DUPLICATE_KEY = 11000


class _Unencodable(Exception):
    """The driver could not encode a document (e.g. an integer beyond 64 bits)."""


class Consumer:
    def __init__(
        self,
        sqs: SqsQueues,
        db: AsyncDatabase,
        redis_client: redis.Redis,
        *,
        concurrency: int = 4,
        wait_seconds: int = 20,
        max_receives: int = 5,
        max_batch_bytes: int = 12 * 2**20,
        rollups: RollupWriter | None = None,
        ring_size: int = 0,
    ) -> None:
        self.sqs = sqs
        self.rollups = rollups
        self.live = LivePublisher(redis_client, ring_size)
        self.logs = db[LOGS]
        self.concurrency = concurrency
        self.wait_seconds = wait_seconds
        # The queue's redrive maxReceiveCount decides when SQS dead-letters a message;
        # this value (from settings) is replaced by the queue's own once it is read.
        self.max_receives = max_receives
        self.budget = ByteBudget(max_batch_bytes)
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._loop(i), name=f"consumer-{i}")
            for i in range(self.concurrency)
        ]
        self._loops.append(asyncio.create_task(self._read_redrive(), name="consumer-redrive"))

    async def close(self, grace: float) -> None:
        """Finish the batches in hand (within ``grace`` s); abandon idle long polls."""
        self._stopping.set()
        if self._loops:
            _, pending = await asyncio.wait(self._loops, timeout=grace)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    async def _receive(self) -> list[dict[str, Any]]:
        """One long poll, abandoned as soon as a stop is requested (SIGTERM must not
        wait out a 20 s poll that holds no batch yet)."""
        url = await self.sqs.url()
        poll = asyncio.ensure_future(
            self.sqs.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self.wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        )
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not poll.done():
            poll.cancel()
            # Messages the cancelled poll may have taken become visible again after
            # their visibility timeout: nothing is lost.
            return []
        return poll.result().get("Messages", [])

    async def _loop(self, n: int) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                messages = await self._receive()
            except Exception as exc:
                log.warning("receive failed", extra={"error": str(exc)[:300], "loop": n})
                await self._pause(backoff)
                backoff = min(backoff * 2, 10)
                continue
            if not messages:
                continue
            RECEIVED.inc(len(messages))
            try:
                # Shielded: SIGTERM lets the batch in hand finish rather than cutting it.
                ok = await asyncio.shield(self.handle(messages))
            except Exception:
                # Whatever went wrong, this loop must go on consuming: one bad batch
                # must not silently stop the worker while /healthz still answers.
                log.exception("batch failed; its messages will be redelivered")
                FAILED.labels("unexpected").inc(len(messages))
                for message in messages:
                    self._count_if_last(receive_count(message), message.get("MessageId"))
                ok = False
            if ok:
                backoff = 0.5
            else:
                await self._pause(backoff)
                backoff = min(backoff * 2, 10)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def handle(self, messages: list[dict[str, Any]]) -> bool:
        """Store, delete and publish one received batch. False if something must retry."""
        opened: list[tuple[dict[str, Any], envelope.Opened]] = []
        for message in messages:
            try:
                opened.append(open_message(message))
            except PoisonMessage as exc:
                self._poison(message, str(exc))
        async with self.budget.hold(sum(o.size for _, o in opened)):
            return await self._handle(opened)

    async def _handle(self, opened: list[tuple[dict[str, Any], envelope.Opened]]) -> bool:
        decoded: list[Decoded] = []
        for message, body in opened:
            try:
                decoded.append(parse_message(message, body))
            except PoisonMessage as exc:
                self._poison(message, str(exc))
        if not decoded:
            return True
        docs = [doc for d in decoded for doc in d.docs]
        try:
            stored_ok, new = await self._store_and_count(decoded, docs)
        except PyMongoError as exc:
            log.warning(
                "rollup marker failed; the batch will be redelivered",
                extra={"error": str(exc)[:300]},
            )
            FAILED.labels("store").inc(len(decoded))
            for d in decoded:
                self._count_if_last(d.receives, d.message_id)
            return False
        done = [d for d, ok in zip(decoded, stored_ok, strict=True) if ok]
        for d, ok in zip(decoded, stored_ok, strict=True):
            if not ok:
                self._count_if_last(d.receives, d.message_id)
        if done:
            await self._delete(done)
            await self.live.publish(done, docs, new)
        return all(stored_ok)

    async def _store_and_count(
        self, decoded: list[Decoded], docs: list[dict[str, Any]]
    ) -> tuple[list[bool], list[int] | None]:
        """``_store``, with the rollups counting the documents it newly stored.

        The batch is announced before the insert and its events are tagged with it: a
        worker killed between the insert and the count leaves markers that outlive the
        lease, and the recovery counts their events
        (services/core/logs/rollups/maintenance.py). Only a failure to announce raises
        (nothing was stored then).
        """
        if not self.rollups or not docs:
            return await self._store(decoded)
        async with self.rollups.attempt(docs) as attempt:
            stored_ok, new = await self._store(decoded)
            if new is not None:
                try:
                    await self.rollups.finish(attempt, docs, new)
                except PyMongoError as exc:  # the markers go stale: the recovery counts
                    log.warning(
                        "rollup count failed; left for the recovery",
                        extra={"error": str(exc)[:300]},
                    )
        return stored_ok, new

    def _count_if_last(self, receives: int, message_id: str | None) -> None:
        """A message that failed on its last allowed receive goes to the DLQ next."""
        if receives >= self.max_receives:
            DEAD.inc()
            log.error(
                "message failed on its last allowed receive; SQS moves it to the dead-letter queue",
                extra={"message_id": message_id, "receives": receives},
            )

    def _poison(self, message: dict[str, Any], reason: str) -> None:
        receives = receive_count(message)
        FAILED.labels("poison").inc()
        if receives >= self.max_receives:
            DEAD.inc()
        log.error(
            "undecodable message left for the dead-letter queue",
            extra={
                "message_id": message.get("MessageId"),
                "reason": reason[:300],
                "receives": receives,
            },
        )

    async def _store(self, decoded: list[Decoded]) -> tuple[list[bool], list[int] | None]:
        """Which messages are wholly stored, and the indexes (in the batch's documents) of
        the documents newly stored now (None: unknown, the insert failed as a whole).

        A document the driver cannot encode fails the whole insert, so then each message
        is stored alone: only the bad one stays behind."""
        try:
            return await self._insert(decoded)
        except _Unencodable as exc:
            if len(decoded) > 1:
                oks: list[bool] = []
                new: list[int] | None = []
                offset = 0
                for d in decoded:
                    ok, part = await self._store([d])
                    oks += ok
                    if new is not None and part is not None:
                        new += [offset + i for i in part]
                    else:
                        new = None
                    offset += len(d.docs)
                return oks, new
            log.error(
                "message holds an event the storage cannot encode; it will be dead-lettered",
                extra={"message_id": decoded[0].message_id, "error": str(exc.__cause__)[:300]},
            )
            FAILED.labels("store").inc()
            return [False], []

    async def _insert(self, decoded: list[Decoded]) -> tuple[list[bool], list[int] | None]:
        docs: list[dict[str, Any]] = []
        owner: list[int] = []
        for i, d in enumerate(decoded):
            docs.extend(d.docs)
            owner.extend([i] * len(d.docs))
        if not docs:
            return [True] * len(decoded), []
        failed: set[int] = set()
        not_new: set[int] = set()
        start = time.perf_counter()
        try:
            result = await self.logs.insert_many(docs, ordered=False)
            STORED.inc(len(result.inserted_ids))
        except BulkWriteError as exc:
            details = exc.details
            dup = 0
            for err in details.get("writeErrors", []):
                not_new.add(err["index"])
                if err.get("code") == DUPLICATE_KEY:
                    dup += 1
                else:
                    failed.add(owner[err["index"]])
            if details.get("writeConcernErrors"):
                failed.update(range(len(decoded)))
            DUPLICATES.inc(dup)
            STORED.inc(details.get("nInserted", 0))
            if failed:
                log.warning(
                    "some events were not stored; their messages will be redelivered",
                    extra={"messages": len(failed)},
                )
        except PyMongoError as exc:
            log.warning(
                "store failed; the batch will be redelivered", extra={"error": str(exc)[:300]}
            )
            FAILED.labels("store").inc(len(decoded))
            return [False] * len(decoded), None
        except (InvalidDocument, OverflowError) as exc:
            raise _Unencodable() from exc
        finally:
            STORE_LATENCY.observe(time.perf_counter() - start)
        if failed:
            FAILED.labels("store").inc(len(failed))
        new = [i for i in range(len(docs)) if i not in not_new]
        return [i not in failed for i in range(len(decoded))], new

    async def _delete(self, done: list[Decoded]) -> None:
        url = await self.sqs.url()
        for i in range(0, len(done), 10):
            chunk = done[i : i + 10]
            try:
                resp = await self.sqs.client.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(j), "ReceiptHandle": d.receipt} for j, d in enumerate(chunk)
                    ],
                )
                if resp.get("Failed"):
                    log.warning(
                        "delete failed; the events are stored and a redelivery will be a no-op",
                        extra={"failed": len(resp["Failed"])},
                    )
            except Exception as exc:
                log.warning("delete failed", extra={"error": str(exc)[:300]})

    async def _read_redrive(self) -> None:
        """Once at start, retried until it succeeds: the queue's own maxReceiveCount."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self.sync_max_receives()
                return
            except Exception as exc:
                log.warning("queue redrive policy unreadable", extra={"error": str(exc)[:300]})
                await self._pause(delay)
                delay = min(delay * 2, 60.0)

    async def sync_max_receives(self) -> None:
        resp = await self.sqs.client.get_queue_attributes(
            QueueUrl=await self.sqs.url(), AttributeNames=["RedrivePolicy"]
        )
        policy = resp.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            log.warning("the queue has no dead-letter queue; failing messages return forever")
            return
        receives = int(orjson.loads(policy)["maxReceiveCount"])
        if receives != self.max_receives:
            log.warning(
                "the queue's maxReceiveCount differs from LOGSERVER_WORKER_MAX_RECEIVES; "
                "using the queue's",
                extra={"queue": receives, "setting": self.max_receives},
            )
            self.max_receives = receives
