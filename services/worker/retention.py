"""Retention: delete each tenant's events older than its ``retention_days``.

A periodic sweep rather than a TTL index, because FerretDB v1 has no TTL
indexes and the same code must run on both. Several worker replicas may
sweep at once; the deletes are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from pymongo.asynchronous.database import AsyncDatabase

from services.core.credentials import TENANTS
from services.core.logmodel import LOGS

log = logging.getLogger(__name__)
SWEPT = Counter("logserver_retention_deleted_total", "Events deleted by the retention sweep")


async def sweep(db: AsyncDatabase, now: datetime | None = None) -> int:
    """Delete expired events of every tenant in one `delete_many` per 100 tenants.

    One `$or` of per-tenant bounds rather than a delete per tenant: MongoDB serves
    each clause from the (tenant_id, timestamp) index, and FerretDB, which scans
    for every query, scans once per sweep instead of once per tenant.
    """
    now = now or datetime.now(UTC)
    clauses = []
    async for tenant in db[TENANTS].find({}, {"retention_days": 1}):
        days = int(tenant.get("retention_days") or 0)
        if days > 0:
            cutoff = now - timedelta(days=days)
            clauses.append({"tenant_id": tenant["_id"], "timestamp": {"$lt": cutoff}})
    deleted = 0
    for i in range(0, len(clauses), 100):
        chunk = clauses[i : i + 100]
        result = await db[LOGS].delete_many({"$or": chunk} if len(chunk) > 1 else chunk[0])
        deleted += result.deleted_count
    if deleted:
        SWEPT.inc(deleted)
        log.info("retention sweep", extra={"deleted": deleted})
    return deleted


async def run_periodically(db: AsyncDatabase, interval: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await sweep(db)
        except Exception as exc:
            log.warning("retention sweep failed", extra={"error": str(exc)[:300]})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
