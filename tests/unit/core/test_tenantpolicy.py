"""TenantPolicies: a tenant's retention, read once per TTL, shared, invalidated on demand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.core.invalidation import Invalidation
from services.core.limits import Limits
from services.core.tenantpolicy import TenantPolicies, retention_of
from tests.support.fakes import FakeClock


class FakeTenants:
    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        self.docs = docs
        self.calls = 0
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def find_one(self, flt: dict[str, Any], projection: Any = None) -> dict | None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        doc = self.docs.get(flt["_id"])
        return dict(doc) if doc is not None else None


@pytest.fixture
def tenants() -> FakeTenants:
    return FakeTenants({"acme": {"retention_days": 30}, "keep": {"retention_days": 3650}})


@pytest.fixture
def policies(tenants: FakeTenants, clock: FakeClock) -> TenantPolicies:
    return TenantPolicies({"tenants": tenants}, ttl_seconds=30)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("doc", "days"),
    [
        ({"retention_days": 7}, 7),
        ({"retention_days": "14"}, 14),
        ({"retention_days": None}, 0),
        ({"retention_days": 0}, 0),
        ({"retention_days": -3}, 0),
        ({"retention_days": "soon"}, 0),
        ({}, 0),
        (None, 0),
    ],
)
def test_retention_of_a_tenant_document(doc, days):
    assert retention_of(doc) == days


async def test_retention_is_read_once_per_ttl(
    policies: TenantPolicies, tenants: FakeTenants, clock: FakeClock
) -> None:
    assert await policies.retention_days("acme") == 30
    tenants.docs["acme"]["retention_days"] = 7
    clock.now += 29.9
    assert await policies.retention_days("acme") == 30
    assert tenants.calls == 1
    clock.now += 0.1
    assert await policies.retention_days("acme") == 7
    assert tenants.calls == 2


async def test_each_tenant_has_its_own_entry(policies: TenantPolicies) -> None:
    assert await policies.retention_days("acme") == 30
    assert await policies.retention_days("keep") == 3650
    assert await policies.retention_days("ghost") == 0  # no document: nothing is swept


async def test_invalidate_and_clear_take_effect_at_once(
    policies: TenantPolicies, tenants: FakeTenants
) -> None:
    assert await policies.retention_days("acme") == 30
    assert await policies.retention_days("keep") == 3650
    tenants.docs["acme"]["retention_days"] = 7
    tenants.docs["keep"]["retention_days"] = 1
    policies.invalidate("acme")
    assert await policies.retention_days("acme") == 7
    assert await policies.retention_days("keep") == 3650  # only acme was invalidated
    policies.clear()
    assert await policies.retention_days("keep") == 1


async def test_concurrent_misses_share_one_read(
    policies: TenantPolicies, tenants: FakeTenants
) -> None:
    tenants.gate = asyncio.Event()
    waiting = [asyncio.create_task(policies.retention_days("acme")) for _ in range(50)]
    await asyncio.sleep(0)
    tenants.gate.set()
    assert await asyncio.gather(*waiting) == [30] * 50
    assert tenants.calls == 1


async def test_a_read_that_began_before_an_invalidation_is_not_cached(
    policies: TenantPolicies, tenants: FakeTenants
) -> None:
    tenants.gate = asyncio.Event()
    before = asyncio.create_task(policies.retention_days("acme"))
    await asyncio.sleep(0)
    tenants.docs["acme"]["retention_days"] = 7  # the change lands during that read...
    policies.invalidate("acme")  # ...and its invalidation arrives
    after = asyncio.create_task(policies.retention_days("acme"))  # must not join the old read
    await asyncio.sleep(0)
    tenants.gate.set()
    assert await after == 7
    await before
    assert await policies.retention_days("acme") == 7
    assert tenants.calls == 2


async def test_storage_unreachable_keeps_the_last_known_value(
    policies: TenantPolicies, tenants: FakeTenants, clock: FakeClock
) -> None:
    assert await policies.retention_days("acme") == 30
    tenants.error = ConnectionError("mongo down")
    clock.now += 31
    assert await policies.retention_days("acme") == 30
    assert await policies.retention_days("acme") == 30
    assert tenants.calls == 2  # not asked again (and waited on) for every request


async def test_storage_unreachable_and_nothing_known_skips_the_check(
    policies: TenantPolicies, tenants: FakeTenants
) -> None:
    tenants.error = ConnectionError("mongo down")
    assert await policies.retention_days("acme") == 0
    assert await policies.retention_days("acme") == 0
    assert tenants.calls == 1


async def test_retention_follows_the_bus(policies: TenantPolicies, tenants: FakeTenants) -> None:
    assert await policies.retention_days("acme") == 30
    assert await policies.retention_days("keep") == 3650
    tenants.docs["acme"]["retention_days"] = 7
    tenants.docs["keep"]["retention_days"] = 1
    policies.on_change(Invalidation("acme", "lsk_1"))  # an API key of acme: not the tenant
    assert await policies.retention_days("acme") == 30
    policies.on_change(Invalidation("acme"))  # the tenant (status, retention, ...)
    assert await policies.retention_days("acme") == 7
    assert await policies.retention_days("keep") == 3650
    policies.on_change(Invalidation())  # the bus reconnected: anything may have changed
    assert await policies.retention_days("keep") == 1


# --- limits: the same read, the same cache -------------------------------------------


DEFAULTS = Limits(100, 200, 1000, 0, 8, 0, 1000, 50)


async def test_limits_are_the_defaults_with_the_tenants_overrides(
    tenants: FakeTenants, clock: FakeClock
) -> None:
    tenants.docs["acme"]["limits"] = {"max_concurrent_queries": 2, "daily_events": 10}
    policies = TenantPolicies({"tenants": tenants}, ttl_seconds=30, defaults=DEFAULTS)  # type: ignore[arg-type]
    limits = await policies.limits("acme")
    assert limits.max_concurrent_queries == 2 and limits.daily_events == 10
    assert limits.max_concurrent_tails == 50
    assert await policies.retention_days("acme") == 30
    assert tenants.calls == 1  # one read serves both
    assert await policies.limits("ghost") == DEFAULTS


async def test_invalidations_from_the_bus(tenants: FakeTenants, clock: FakeClock) -> None:
    policies = TenantPolicies({"tenants": tenants}, ttl_seconds=30, defaults=DEFAULTS)  # type: ignore[arg-type]
    await policies.limits("acme")
    await policies.limits("keep")
    policies.on_change(Invalidation("acme", "lsk_1"))  # one API key: no policy change
    policies.on_change(Invalidation("other"))
    assert tenants.calls == 2
    tenants.docs["acme"]["limits"] = {"max_concurrent_tails": 1}
    policies.on_change(Invalidation("acme"))  # e.g. PATCH /tenants/acme
    assert (await policies.limits("acme")).max_concurrent_tails == 1
    await policies.limits("keep")
    assert tenants.calls == 3
    policies.on_change(Invalidation())  # anything may have changed
    await policies.limits("keep")
    assert tenants.calls == 4
