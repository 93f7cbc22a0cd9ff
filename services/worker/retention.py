"""Retention: delete each tenant's events older than its ``retention_days``.

A periodic sweep rather than a TTL index, because FerretDB v1 has no TTL
indexes and the same code must run on both.

One replica sweeps at a time: a turn starts only under a lease in Redis
(:class:`~services.worker.lease.Lease`). While sweeping, the holder renews it
before each delete for as long as that delete may run; when done, for one more
interval, and it does not release it. So the fleet sweeps about once per
interval however many replicas KEDA runs, and a replica that starts during a
backlog does not add a sweep of its own.

A sweep is bounded and interruptible: it stops at the next delete when its
time budget is spent (each delete carries the time left as ``maxTimeMS``),
when the worker shuts down, or when its lease cannot be renewed. What it left
is for the next sweep, which visits the tenants in another order.

Expired events leave the rollups exactly (``rollups.delete_counted``, under each
tenant's delete lock: a tenant whose cleanup is running is swept next time) and
the tenants' recent-events rings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pymongo
import redis.asyncio as redis
from prometheus_client import Counter, Gauge
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.core.credentials import TENANTS
from services.core.errors import Conflict
from services.core.logs import ring
from services.core.logs.rollups import delete_counted, tenant_lock
from services.core.tenantpolicy import retention_of

log = logging.getLogger(__name__)
SWEPT = Counter("logserver_retention_deleted_total", "Events deleted by the retention sweep")
SWEEPS = Counter(
    "logserver_retention_sweeps_total",
    "Retention sweeps this replica ran, by outcome: done; cut (time budget, shutdown or "
    "lost lease: the next sweep goes on); failed",
    ["outcome"],
)
SKIPPED = Counter(
    "logserver_retention_skipped_total",
    "Sweep turns left to the replica that holds the retention lease",
)
SWEEPING = Gauge("logserver_retention_sweeping", "1 while this replica runs a retention sweep")
TENANTS_PER_DELETE = 100

KeepGoing = Callable[[], Awaitable[bool]]


async def sweep(
    db: AsyncDatabase,
    now: datetime | None = None,
    *,
    keep_going: KeepGoing | None = None,
    deadline: float | None = None,
    redis_client: redis.Redis | None = None,
    lease: timedelta = timedelta(seconds=120),
) -> tuple[int, bool]:
    """Delete expired events, one `delete_many` per 100 tenants; ``(deleted, complete)``.

    One `$or` of per-tenant bounds rather than a delete per tenant: MongoDB serves
    each clause from the (tenant_id, timestamp) index, and FerretDB, which scans
    for every query, scans once per 100 tenants instead of once per tenant.
    ``keep_going`` is asked before each delete; ``deadline`` (``time.monotonic()``)
    bounds the whole sweep.
    """
    now = now or datetime.now(UTC)

    def left() -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    clauses = []
    try:
        with pymongo.timeout(left()):
            async for tenant in db[TENANTS].find({}, {"retention_days": 1}):
                days = retention_of(tenant)
                if days > 0:
                    cutoff = now - timedelta(days=days)
                    clauses.append({"tenant_id": tenant["_id"], "timestamp": {"$lt": cutoff}})
    except PyMongoError as exc:
        if exc.timeout:
            return 0, False
        raise
    # A sweep cut short must not leave the same tenants for last every time.
    random.shuffle(clauses)
    deleted = 0
    for i in range(0, len(clauses), TENANTS_PER_DELETE):
        remaining = left()
        if (remaining is not None and remaining <= 0) or (keep_going and not await keep_going()):
            return deleted, False
        try:
            n = await _delete_chunk(db, clauses[i : i + TENANTS_PER_DELETE], left(), lease)
        except PyMongoError as exc:
            if exc.timeout:  # the budget ran out inside this delete; part of it is done
                return deleted, False  # (a chunk cut half-way is finished by the recovery)
            raise
        deleted += n
        SWEPT.inc(n)
        if n and redis_client is not None:
            await _trim_rings(redis_client, clauses[i : i + TENANTS_PER_DELETE])
    return deleted, True


async def _delete_chunk(
    db: AsyncDatabase, chunk: list[dict], seconds: float | None, lease: timedelta
) -> int:
    """Delete the expired events of up to 100 tenants, each under its delete lock."""
    async with contextlib.AsyncExitStack() as locks:
        held = []
        for clause in chunk:
            try:
                await locks.enter_async_context(tenant_lock(db, clause["tenant_id"], lease))
            except Conflict:
                continue
            held.append(clause)
        if not held:
            return 0
        with pymongo.timeout(seconds):
            return await delete_counted(db, {"$or": held} if len(held) > 1 else held[0])


async def _trim_rings(client: redis.Redis, chunk: list[dict]) -> None:
    """Expired events leave the recent-events rings too (a replay must not show them)."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            for c in chunk:
                cutoff = int(c["timestamp"]["$lt"].timestamp() * 1000)
                pipe.zremrangebyscore(ring.ring_key(c["tenant_id"]), "-inf", f"({cutoff}")
            await pipe.execute()
    except Exception as exc:
        log.warning("ring trim failed; invalidating", extra={"error": str(exc)[:300]})
        with contextlib.suppress(Exception):
            for c in chunk:
                await ring.invalidate_now(client, c["tenant_id"])


class LeaseLike(Protocol):
    holder: str

    async def acquire(self) -> bool: ...
    async def renew(self, ttl_seconds: float | None = None) -> bool: ...
    async def release(self) -> None: ...


@dataclass
class Sweeper:
    """Every ``interval`` s: take the lease if free, sweep within ``budget`` s."""

    db: AsyncDatabase
    lease: LeaseLike
    interval: float
    budget: float
    stop: asyncio.Event
    redis_client: redis.Redis | None = None
    rollup_lease: timedelta = timedelta(seconds=120)

    async def run(self) -> None:
        while not self.stop.is_set():
            await self.turn()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.interval)

    async def _keep_going(self, deadline: float) -> bool:
        if self.stop.is_set():
            return False
        # Long enough for the next delete, which may run until the deadline.
        ttl = max(self.interval, deadline - time.monotonic() + 1)
        try:
            return await self.lease.renew(ttl)
        except Exception:
            return False  # without a lease we might be sweeping beside another replica

    async def turn(self) -> str | None:
        """One turn; the sweep's outcome, or None if another replica holds the lease."""
        try:
            if not await self.lease.acquire():
                SKIPPED.inc()
                return None
        except Exception as exc:
            log.warning("retention lease unavailable", extra={"error": str(exc)[:300]})
            return None
        start = time.monotonic()
        deadline = start + self.budget
        outcome, deleted = "failed", 0
        SWEEPING.set(1)
        try:
            deleted, complete = await sweep(
                self.db,
                keep_going=lambda: self._keep_going(deadline),
                deadline=deadline,
                redis_client=self.redis_client,
                lease=self.rollup_lease,
            )
            outcome = "done" if complete else "cut"
        except Exception as exc:
            log.warning("retention sweep failed", extra={"error": str(exc)[:300]})
        finally:
            SWEEPING.set(0)
            SWEEPS.labels(outcome).inc()
            # Cut by shutdown: let another replica go on at once. Otherwise keep the
            # lease one interval from now: it marks the period this sweep served.
            with contextlib.suppress(Exception):
                if self.stop.is_set() and outcome != "done":
                    await asyncio.wait_for(self.lease.release(), 2)
                else:
                    await asyncio.wait_for(self.lease.renew(self.interval), 2)
        log.info(
            "retention sweep",
            extra={
                "outcome": outcome,
                "deleted": deleted,
                "seconds": round(time.monotonic() - start, 3),
                "holder": self.lease.holder,
            },
        )
        return outcome


async def run_periodically(
    interval: float, stop: asyncio.Event, job: Callable[[], Awaitable[object]], name: str
) -> None:
    """Run ``job`` every ``interval`` seconds until ``stop``; a failure is logged, not fatal
    (the rollup recovery and compaction)."""
    while not stop.is_set():
        try:
            await job()
        except Exception as exc:
            log.warning(f"{name} failed", extra={"error": str(exc)[:300]})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
