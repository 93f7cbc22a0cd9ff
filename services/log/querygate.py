"""What a search, stats or export must pass before it reaches the storage.

- ``max_query_range_hours`` (the tenant's): a query whose from/to span is wider, or
  that has no ``from`` while the limit is set, is refused with ``422`` (type
  ``…/problems/query-range``): asking again later cannot succeed, only a narrower
  range can, so it is not a ``429``.
- ``max_concurrent_queries`` (the tenant's, counted across every log service replica
  in Redis, :class:`~services.core.slots.SlotLeases`): one more is ``429``
  (``…/problems/query-concurrency``, ``Retry-After: 1``).
- ``LOGSERVER_QUERY_MAX_CONCURRENT`` (this process's, over all tenants): queries
  beyond it wait their turn, first come first served, for at most
  ``LOGSERVER_QUERY_QUEUE_SECONDS``, then ``503`` (``…/problems/server-busy``). The
  storage never sees more than that many queries from one process, whoever sends
  them.

The slots are held until the query ends, however it ends: answered, failed, timed
out, or cancelled because its client went away (``services/core/web/disconnect.py``);
an export's until its last byte was sent or its client left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as redis

from services.core.errors import RateLimited, ServerBusy, ValidationFailed
from services.core.limits import Limits
from services.core.limitstore import StoreGuard, count_refusal, record_refusal
from services.core.logs.filters import LogFilter
from services.core.metrics import LIMIT_UTILISATION
from services.core.slots import SlotLeases

QUERY_CAPACITY = "query_capacity"  # the reason a process-cap refusal is counted under


class QueryRangeTooWide(ValidationFailed):
    slug = "query-range"

    def __init__(self, detail: str, *, value: int) -> None:
        super().__init__(detail, errors=[{"field": "from", "message": detail}])
        self.value = value

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body = super().to_problem(instance)
        body["limit"] = "max_query_range_hours"
        body["limit_value"] = self.value
        return body


def check_range(flt: LogFilter, limits: Limits, now: datetime | None = None) -> None:
    """Refuse a query wider than the tenant's ``max_query_range_hours`` (or unbounded)."""
    hours = limits.max_query_range_hours
    if not hours:
        return
    if flt.start is None:
        raise QueryRangeTooWide(
            f"This tenant's queries may span at most {hours:,} hours (max_query_range_hours): "
            f"give from=<RFC 3339> (and to=, default now) at most {hours:,} hours apart, "
            "or timestamp=YYYY-MM-DD.",
            value=hours,
        )
    end = flt.end or (now or datetime.now(UTC))
    span = end - flt.start
    if span > timedelta(hours=hours):
        asked = round(span.total_seconds() / 3600)
        raise QueryRangeTooWide(
            f"from/to span about {asked:,} hours; this tenant's queries may span at most "
            f"{hours:,} (max_query_range_hours). Narrow the range, or split it in several "
            "queries.",
            value=hours,
        )


class QueryGate:
    def __init__(
        self,
        client: redis.Redis | None,
        leases: SlotLeases,
        guard: StoreGuard,
        *,
        max_concurrent: int,
        queue_seconds: float,
    ) -> None:
        self.client = client
        self.leases = leases
        self.guard = guard
        self.max_concurrent = max_concurrent
        self.queue_seconds = queue_seconds
        self._process = asyncio.Semaphore(max_concurrent) if max_concurrent > 0 else None

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str, limits: Limits) -> AsyncIterator[None]:
        """Hold one of the tenant's query slots and one of this process's for the block."""
        limit = limits.max_concurrent_queries
        lease = await self.leases.acquire(tenant, limit)
        if lease is None:
            count_refusal(tenant, "max_concurrent_queries")  # the script counted the usage
            raise RateLimited(
                f"Tenant '{tenant}' already runs {limit:,} searches, stats or exports at once "
                "(max_concurrent_queries); wait for one to finish.",
                slug="query-concurrency",
                limit="max_concurrent_queries",
                value=limit,
                retry_after=1,
            )
        try:
            if limit and lease.counted:
                LIMIT_UTILISATION.labels(tenant, "max_concurrent_queries").set(lease.held / limit)
            async with self._process_slot(tenant):
                yield
        finally:
            self.leases.release(lease)

    @contextlib.asynccontextmanager
    async def _process_slot(self, tenant: str) -> AsyncIterator[None]:
        if self._process is None:
            yield
            return
        try:
            if self._process.locked():  # (wait_for would time out at once with 0 s)
                await asyncio.wait_for(self._process.acquire(), self.queue_seconds)
            else:
                await self._process.acquire()  # free: returns without waiting
        except TimeoutError:
            await record_refusal(self.client, self.guard, tenant, QUERY_CAPACITY)
            raise ServerBusy(
                f"This log service is running its maximum of {self.max_concurrent} queries "
                f"and none finished within {self.queue_seconds:g} s; retry shortly.",
                retry_after=2,
            ) from None
        try:
            yield
        finally:
            self._process.release()

    async def close(self) -> None:
        await self.leases.close()
