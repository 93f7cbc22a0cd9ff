"""Retention: delete each tenant's events older than its ``retention_days``.

A periodic sweep rather than a TTL index, because FerretDB v1 has no TTL
indexes and the same code must run on both. Several worker replicas may
sweep at once (each tenant's delete lock keeps them apart). Deleted events
leave the rollups and the recent-events rings with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import redis.asyncio as redis
from prometheus_client import Counter
from pymongo.asynchronous.database import AsyncDatabase

from services.core import ring
from services.core.credentials import TENANTS
from services.core.errors import Conflict
from services.core.rollups import delete_counted, tenant_lock

log = logging.getLogger(__name__)
SWEPT = Counter("logserver_retention_deleted_total", "Events deleted by the retention sweep")


async def sweep(
    db: AsyncDatabase,
    now: datetime | None = None,
    redis_client: redis.Redis | None = None,
    lease: timedelta = timedelta(seconds=120),
) -> int:
    """Delete expired events of every tenant in one listing per 100 tenants.

    One `$or` of per-tenant bounds rather than a query per tenant: MongoDB serves
    each clause from the (tenant_id, timestamp) index, and FerretDB, which scans
    for every query, scans once per sweep instead of once per tenant. The events
    are deleted through ``rollups.delete_counted`` (their counts leave the rollups
    with them), under each tenant's delete lock; a tenant whose cleanup is running
    is swept next time.
    """
    now = now or datetime.now(UTC)
    cutoffs: dict[str, datetime] = {}
    async for tenant in db[TENANTS].find({}, {"retention_days": 1}):
        days = int(tenant.get("retention_days") or 0)
        if days > 0:
            cutoffs[tenant["_id"]] = now - timedelta(days=days)
    tenants = list(cutoffs)
    deleted = 0
    for i in range(0, len(tenants), 100):
        async with contextlib.AsyncExitStack() as locks:
            chunk: dict[str, datetime] = {}
            for t in tenants[i : i + 100]:
                try:
                    await locks.enter_async_context(tenant_lock(db, t, lease))
                except Conflict:
                    continue
                chunk[t] = cutoffs[t]
            if not chunk:
                continue
            clauses = [{"tenant_id": t, "timestamp": {"$lt": c}} for t, c in chunk.items()]
            n = await delete_counted(db, {"$or": clauses} if len(clauses) > 1 else clauses[0])
        deleted += n
        if n and redis_client is not None:
            await _trim_rings(redis_client, chunk)
    if deleted:
        SWEPT.inc(deleted)
        log.info("retention sweep", extra={"deleted": deleted})
    return deleted


async def _trim_rings(client: redis.Redis, cutoffs: dict[str, datetime]) -> None:
    """Expired events leave the recent-events rings too (a replay must not show them)."""
    try:
        async with client.pipeline(transaction=False) as pipe:
            for t, c in cutoffs.items():
                pipe.zremrangebyscore(ring.ring_key(t), "-inf", f"({int(c.timestamp() * 1000)}")
            await pipe.execute()
    except Exception as exc:
        log.warning("ring trim failed; invalidating", extra={"error": str(exc)[:300]})
        with contextlib.suppress(Exception):
            for t in cutoffs:
                await ring.invalidate_now(client, t)


async def run_periodically(
    interval: float, stop: asyncio.Event, job: Callable[[], Awaitable[object]], name: str
) -> None:
    """Run ``job`` every ``interval`` seconds until ``stop``; a failure is logged, not fatal."""
    while not stop.is_set():
        try:
            await job()
        except Exception as exc:
            log.warning(f"{name} failed", extra={"error": str(exc)[:300]})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
