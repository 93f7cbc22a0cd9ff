"""Stream slots: the tenant's and the process's caps on open streams (4429)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.broadcast.stream import close_code, give_back_slot, take_slot
from services.core.errors import RateLimited
from services.core.limits import Limits
from services.core.limitstore import StoreGuard
from services.core.slots import Lease
from tests.support.fakes import FakePolicies


class FakeLeases:
    def __init__(self, grant: bool) -> None:
        self.grant = grant
        self.released: list[Lease] = []

    async def acquire(self, tenant: str, limit: int) -> Lease | None:
        return Lease(tenant, "m", counted=True, held=1) if self.grant else None

    def release(self, lease: Lease) -> None:
        self.released.append(lease)


def state(grant: bool = True, cap: int = 10, open_streams: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        settings=SimpleNamespace(stream_max_connections=cap),
        open_streams=open_streams,
        policies=FakePolicies(Limits(0, 0, 0, 0, 0, 0, 0, 3)),  # 3 tails
        tail_leases=FakeLeases(grant),
        clients=SimpleNamespace(redis=None),
        limit_guard=StoreGuard("test"),
    )


def test_too_many_streams_close_with_4429() -> None:
    exc = RateLimited(
        "x", slug="tail-concurrency", limit="max_concurrent_tails", value=3, retry_after=10
    )
    assert close_code(exc) == (4429, "too_many_streams")


async def test_a_stream_takes_and_gives_back_both_slots() -> None:
    s = state()
    lease = await take_slot(s, "acme")
    assert s.open_streams == 1
    give_back_slot(s, lease)
    assert s.open_streams == 0 and s.tail_leases.released == [lease]


async def test_the_tenants_cap_refuses_and_leaves_the_process_count_alone() -> None:
    s = state(grant=False)
    with pytest.raises(RateLimited) as caught:
        await take_slot(s, "acme")
    assert caught.value.limit == "max_concurrent_tails" and caught.value.value == 3
    assert s.open_streams == 0


async def test_the_process_cap_refuses_before_asking_redis() -> None:
    s = state(cap=2, open_streams=2)
    with pytest.raises(RateLimited) as caught:
        await take_slot(s, "acme")
    assert caught.value.limit == "stream_max_connections" and caught.value.type.endswith(
        "/tail-capacity"
    )
    assert s.open_streams == 2
