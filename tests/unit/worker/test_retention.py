"""The retention sweep and the single sweeper, against in-memory fakes (no I/O):
one replica sweeps per lease period, a sweep stops at the next delete when its
budget is spent, the worker stops or the lease is lost."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from pymongo.errors import DuplicateKeyError, ExecutionTimeout

from services.core.credentials import TENANTS
from services.core.logs.model import LOGS
from services.core.logs.rollups import PENDING, ROLLUPS
from services.worker.retention import TENANTS_PER_DELETE, Sweeper, sweep

NOW = datetime(2026, 1, 31, tzinfo=UTC)


class FakeTenants:
    def __init__(self, tenants: list[dict[str, Any]]) -> None:
        self.tenants = tenants

    def find(self, query: dict, projection: dict) -> Any:
        async def rows():
            for t in self.tenants:
                yield t

        return rows()


class FakeLogs:
    """Each delete lists the expired events (one per tenant here), then deletes those ids
    (services/core/logs/rollups/deletes.py:delete_counted); ``deletes`` holds the listing
    queries."""

    def __init__(self, on_delete=None) -> None:
        self.deletes: list[dict[str, Any]] = []
        self.on_delete = on_delete

    def find(self, query: dict[str, Any], projection: dict, **_: Any) -> Any:
        self.deletes.append(query)

        async def rows():
            for c in query.get("$or", [query]):
                yield {
                    "_id": f"{c['tenant_id']}:e",
                    "tenant_id": c["tenant_id"],
                    "level": "INFO",
                    "minute": NOW,
                }

        return rows()

    async def delete_many(self, query: dict[str, Any]) -> Any:
        if self.on_delete:
            await self.on_delete(len(self.deletes))
        return SimpleNamespace(deleted_count=len(query["_id"]["$in"]))


class FakeStore:
    """`log_rollup_pending` / `log_rollups`: markers, locks, deltas."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def insert_one(self, doc: dict[str, Any]) -> None:
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("E11000 duplicate key")
        self.docs[doc["_id"]] = doc

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> None:
        for d in docs:
            self.docs[d["_id"]] = d

    async def find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        return self.docs.get(query["_id"])

    async def delete_one(self, query: dict[str, Any]) -> None:
        self.docs.pop(query["_id"], None)

    async def delete_many(self, query: dict[str, Any]) -> None:
        for i in query["_id"]["$in"]:
            self.docs.pop(i, None)

    async def update_many(self, query: dict[str, Any], update: dict[str, Any]) -> None:
        return None


def fake_db(n_tenants: int, logs: FakeLogs | None = None) -> dict[str, Any]:
    tenants = [{"_id": f"t{i}", "retention_days": 7} for i in range(n_tenants)]
    tenants.append({"_id": "keep-forever", "retention_days": 0})
    return {
        TENANTS: FakeTenants(tenants),
        LOGS: logs or FakeLogs(),
        PENDING: FakeStore(),
        ROLLUPS: FakeStore(),
    }


class SharedLease:
    """Many replicas' leases on one name; the test decides when a period ends."""

    def __init__(self) -> None:
        self.owner: str | None = None
        self.lost = False

    def for_replica(self, holder: str) -> ReplicaLease:
        return ReplicaLease(self, holder)


class ReplicaLease:
    def __init__(self, shared: SharedLease, holder: str) -> None:
        self.shared = shared
        self.holder = holder
        self.renewals = 0
        self.ttls: list[float | None] = []
        self.released = False

    async def acquire(self) -> bool:
        if self.shared.owner is None:
            self.shared.owner = self.holder
            return True
        return False

    async def renew(self, ttl_seconds: float | None = None) -> bool:
        self.renewals += 1
        self.ttls.append(ttl_seconds)
        return self.shared.owner == self.holder and not self.shared.lost

    async def release(self) -> None:
        if self.shared.owner == self.holder:
            self.shared.owner = None
            self.released = True


def sweeper(db: Any, lease: Any, *, budget: float = 60, stop: asyncio.Event | None = None):
    return Sweeper(db, lease, interval=1, budget=budget, stop=stop or asyncio.Event())


async def test_sweep_deletes_per_100_tenants_and_skips_unlimited_ones() -> None:
    logs = FakeLogs()
    deleted, complete = await sweep(fake_db(250, logs), NOW)  # type: ignore[arg-type]
    assert (deleted, complete) == (250, True)
    assert [len(q["$or"]) for q in logs.deletes] == [100, 100, 50]
    tenants = {c["tenant_id"] for q in logs.deletes for c in q["$or"]}
    assert "keep-forever" not in tenants and len(tenants) == 250


async def test_only_the_lease_holder_sweeps() -> None:
    shared = SharedLease()
    db = fake_db(3)
    one = sweeper(db, shared.for_replica("one"))
    two = sweeper(db, shared.for_replica("two"))
    assert await one.turn() == "done"
    assert await two.turn() is None  # the period is one's
    assert await one.turn() is None  # and one does not sweep twice in it
    assert len(db[LOGS].deletes) == 1
    shared.owner = None  # the period ended (ttl)
    assert await two.turn() == "done"
    assert len(db[LOGS].deletes) == 2


async def test_a_finished_sweep_keeps_its_lease() -> None:
    shared = SharedLease()
    lease = shared.for_replica("one")
    assert await sweeper(fake_db(1), lease).turn() == "done"
    assert shared.owner == "one" and not lease.released


async def test_a_lost_lease_stops_the_sweep_at_the_next_delete() -> None:
    shared = SharedLease()

    async def lose(n: int) -> None:
        shared.lost = True

    logs = FakeLogs(on_delete=lose)
    lease = shared.for_replica("one")
    assert await sweeper(fake_db(3 * TENANTS_PER_DELETE, logs), lease).turn() == "cut"
    assert len(logs.deletes) == 1
    assert lease.renewals == 3  # before each delete, and once at the end (refused)


async def test_renewals_cover_each_delete_then_one_interval() -> None:
    lease = SharedLease().for_replica("one")
    assert await sweeper(fake_db(2 * TENANTS_PER_DELETE), lease, budget=30).turn() == "done"
    before_deletes, after = lease.ttls[:-1], lease.ttls[-1]
    assert len(before_deletes) == 2
    assert all(29 < ttl <= 31 for ttl in before_deletes)  # the delete may run to the deadline
    assert after == 1  # the interval: the next sweep is one interval after this one


async def test_shutdown_stops_the_sweep_and_hands_the_lease_on() -> None:
    shared = SharedLease()
    stop = asyncio.Event()

    async def stop_now(n: int) -> None:
        stop.set()

    logs = FakeLogs(on_delete=stop_now)
    lease = shared.for_replica("one")
    assert await sweeper(fake_db(300, logs), lease, stop=stop).turn() == "cut"
    assert len(logs.deletes) == 1
    assert lease.released and shared.owner is None


async def test_the_budget_bounds_a_sweep() -> None:
    # Long enough that even a busy machine starts the first delete within it...
    budget = 0.3

    async def outlasting_the_budget(n: int) -> None:
        # ...and asyncio.sleep never wakes early, so it is spent after that delete.
        await asyncio.sleep(budget)

    logs = FakeLogs(on_delete=outlasting_the_budget)
    lease = SharedLease().for_replica("one")
    outcome = await sweeper(fake_db(10 * TENANTS_PER_DELETE, logs), lease, budget=budget).turn()
    assert outcome == "cut"
    assert len(logs.deletes) == 1  # of the 10 the sweep had to do


async def test_a_delete_stopped_by_its_time_limit_cuts_the_sweep() -> None:
    async def timed_out(n: int) -> None:
        raise ExecutionTimeout("operation exceeded time limit", 50)

    logs = FakeLogs(on_delete=timed_out)
    deleted, complete = await sweep(fake_db(300, logs), NOW, deadline=time.monotonic() + 5)  # type: ignore[arg-type]
    assert (deleted, complete) == (0, False)


async def test_a_failing_sweep_is_reported_not_raised() -> None:
    async def broken(n: int) -> None:
        raise ConnectionError("storage away")

    lease = SharedLease().for_replica("one")
    assert await sweeper(fake_db(1, FakeLogs(on_delete=broken)), lease).turn() == "failed"


async def test_run_stops_promptly_when_told() -> None:
    shared = SharedLease()
    stop = asyncio.Event()
    task = asyncio.create_task(sweeper(fake_db(1), shared.for_replica("one"), stop=stop).run())
    await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 0.5)


async def test_an_unreachable_lease_means_no_sweep() -> None:
    class Down:
        holder = "one"

        async def acquire(self) -> bool:
            raise RuntimeError("redis down")

    db = fake_db(1)
    assert await sweeper(db, Down()).turn() is None
    assert db[LOGS].deletes == []


async def test_expired_events_leave_the_rollups_and_no_lock_or_marker_stays() -> None:
    db = fake_db(3)
    deleted, complete = await sweep(db, NOW)  # type: ignore[arg-type]
    assert (deleted, complete) == (3, True)
    deltas = db[ROLLUPS].docs.values()
    assert sorted(d["tenant_id"] for d in deltas) == ["t0", "t1", "t2"]
    assert all(sum(d["c"].values()) == -1 for d in deltas)
    assert db[PENDING].docs == {}  # markers finished, locks released


async def test_a_tenant_whose_cleanup_runs_is_swept_next_time() -> None:
    db = fake_db(2)
    db[PENDING].docs["t0:lock"] = {"_id": "t0:lock", "tenant_id": "t0", "at": datetime.now(UTC)}
    deleted, _ = await sweep(db, NOW)  # type: ignore[arg-type]
    assert deleted == 1
    assert [c["tenant_id"] for c in db[LOGS].deletes[0].get("$or", [db[LOGS].deletes[0]])] == ["t1"]


async def test_an_event_the_rollups_never_counted_is_deleted_without_a_delta() -> None:
    logs = FakeLogs()

    def rows_without_minute(query: dict[str, Any], projection: dict, **_: Any) -> Any:
        logs.deletes.append(query)

        async def rows():
            yield {"_id": "t0:e", "tenant_id": "t0"}  # stored by other means: no minute, level

        return rows()

    logs.find = rows_without_minute  # type: ignore[method-assign]
    db = fake_db(1, logs)
    assert await sweep(db, NOW) == (1, True)  # type: ignore[arg-type]
    assert db[ROLLUPS].docs == {} and db[PENDING].docs == {}
