"""The query gate: time range limit, the tenant's slots, this process's cap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.core.errors import RateLimited, ServerBusy
from services.core.limits import Limits
from services.core.limitstore import StoreGuard
from services.core.logs.filters import LogFilter
from services.core.slots import Lease
from services.log.querygate import QueryGate, QueryRangeTooWide, check_range
from tests.support.fakes import WatchedSemaphore

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def limits(**values: int) -> Limits:
    base = dict.fromkeys(
        (
            "ingest_events_per_second",
            "ingest_burst",
            "ingest_bytes_per_second",
            "daily_events",
            "max_concurrent_queries",
            "max_query_range_hours",
            "max_export_events",
            "max_concurrent_tails",
        ),
        0,
    )
    return Limits(**{**base, **values})


def test_no_range_limit_allows_anything() -> None:
    check_range(LogFilter(), limits())


def test_a_range_limit_needs_from_and_bounds_the_span() -> None:
    day = limits(max_query_range_hours=24)
    with pytest.raises(QueryRangeTooWide) as unbounded:
        check_range(LogFilter(), day, NOW)
    problem = unbounded.value.to_problem()
    assert problem["status"] == 422 and problem["type"].endswith("/query-range")
    assert problem["limit"] == "max_query_range_hours" and problem["limit_value"] == 24
    check_range(LogFilter(start=NOW - timedelta(hours=24)), day, NOW)
    with pytest.raises(QueryRangeTooWide, match="about 25 hours"):
        check_range(LogFilter(start=NOW - timedelta(hours=25)), day, NOW)
    # `to` counts, even in the future
    late = LogFilter(start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=30))
    with pytest.raises(QueryRangeTooWide):
        check_range(late, day, NOW)
    old_day = LogFilter(start=NOW - timedelta(days=40), end=NOW - timedelta(days=39))
    check_range(old_day, day, NOW)


class FakeLeases:
    def __init__(self, grant: bool = True) -> None:
        self.grant = grant
        self.acquired: list[tuple[str, int]] = []
        self.released: list[Lease] = []

    async def acquire(self, tenant: str, limit: int) -> Lease | None:
        self.acquired.append((tenant, limit))
        return Lease(tenant, "m", counted=True, held=1) if self.grant else None

    def release(self, lease: Lease) -> None:
        self.released.append(lease)


def gate(leases: FakeLeases, max_concurrent: int = 1, queue: float = 0.05) -> QueryGate:
    return QueryGate(
        None,
        leases,  # type: ignore[arg-type]
        StoreGuard("test"),
        max_concurrent=max_concurrent,
        queue_seconds=queue,
    )


async def test_the_tenants_limit_refuses_with_429() -> None:
    leases = FakeLeases(grant=False)
    with pytest.raises(RateLimited) as caught:
        async with gate(leases).slot("acme", limits(max_concurrent_queries=2)):
            pytest.fail("must not run")
    assert caught.value.type.endswith("/query-concurrency")
    assert caught.value.limit == "max_concurrent_queries" and caught.value.value == 2
    assert caught.value.headers == {"Retry-After": "1"}
    assert leases.acquired == [("acme", 2)]


async def test_slots_are_given_back_however_the_query_ends() -> None:
    leases = FakeLeases()
    g = gate(leases)
    with pytest.raises(ValueError):
        async with g.slot("acme", limits()):
            raise ValueError("query failed")
    assert len(leases.released) == 1
    started = asyncio.Event()

    async def query() -> None:
        async with g.slot("acme", limits()):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(query())
    await started.wait()
    task.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(leases.released) == 2
    async with g.slot("acme", limits()):  # the process slot is free again too
        pass


async def test_beyond_the_process_cap_queries_wait_then_503() -> None:
    leases = FakeLeases()
    g = gate(leases, max_concurrent=1, queue=0.05)
    g._process = process = WatchedSemaphore(1)
    running = asyncio.Event()
    done = asyncio.Event()

    async def long_query() -> None:
        async with g.slot("a", limits()):
            running.set()
            await done.wait()

    first = asyncio.create_task(long_query())
    await running.wait()
    with pytest.raises(ServerBusy) as caught:
        async with g.slot("b", limits()):
            pytest.fail("must wait")
    assert caught.value.status == 503 and caught.value.type.endswith("/server-busy")
    assert [lease.tenant for lease in leases.released] == ["b"]  # its tenant slot too

    process.blocked.clear()
    waiting = asyncio.create_task(gate_wait(g))
    await asyncio.wait_for(process.blocked.wait(), 5)  # it waits its turn...
    done.set()  # ...and gets it when the first gives the slot back
    await first
    assert await waiting == "ran"


async def gate_wait(g: QueryGate) -> str:
    g.queue_seconds = 5
    async with g.slot("c", limits()):
        return "ran"
