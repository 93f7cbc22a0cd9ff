"""AccessWatch: an open stream ends when its token expires or its key or tenant is refused."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.broadcast.access import AccessWatch
from services.broadcast.stream import close_code
from services.core.errors import NotFound, Unauthorized, Unavailable
from services.core.invalidation import Invalidation, InvalidationBus
from services.core.principal import Principal


class FakeCredentials:
    """The two checks a stream re-runs, answering what the test says, counting calls."""

    def __init__(self) -> None:
        self.refuse: Exception | None = None
        self.refuse_tenant: Exception | None = None
        self.checks = 0
        self.checked = asyncio.Event()

    async def ensure_active(self, principal: Principal) -> None:
        self.checks += 1
        self.checked.set()
        if self.refuse is not None:
            raise self.refuse

    async def ensure_tenant(self, tenant: str) -> None:
        if self.refuse_tenant is not None:
            raise self.refuse_tenant

    async def until_checks(self, n: int) -> None:
        async with asyncio.timeout(2):
            while self.checks < n:
                self.checked.clear()
                await self.checked.wait()


def principal(role: str = "viewer", tenant: str = "acme", ttl: int = 3600) -> Principal:
    return Principal("lsk_1", tenant, role, "jti", int(time.time()) + ttl)


def watch(
    creds: FakeCredentials,
    bus: InvalidationBus,
    p: Principal | None = None,
    tenant: str = "acme",
    every: float = 60,
) -> AccessWatch:
    return AccessWatch(creds, bus, p or principal(), tenant, every)  # type: ignore[arg-type]


@pytest.fixture
def creds() -> FakeCredentials:
    return FakeCredentials()


@pytest.fixture
def bus() -> InvalidationBus:
    return InvalidationBus(None)


async def test_revoked_key_ends_the_stream_on_its_announcement(
    creds: FakeCredentials, bus: InvalidationBus
) -> None:
    w = watch(creds, bus)
    ended = asyncio.ensure_future(w.ended())
    await creds.until_checks(1)  # the first check runs at once: still fine
    assert not ended.done()
    creds.refuse = Unauthorized("The API key behind this token was revoked.")
    bus.deliver(Invalidation("acme", "lsk_1"))
    reason = await asyncio.wait_for(ended, 1)
    assert close_code(reason) == (4401, "unauthorized")
    assert "revoked" in reason.detail


async def test_unrelated_changes_cause_no_check(
    creds: FakeCredentials, bus: InvalidationBus
) -> None:
    w = watch(creds, bus)
    ended = asyncio.ensure_future(w.ended())
    await creds.until_checks(1)
    bus.deliver(Invalidation("acme", "lsk_other"))
    bus.deliver(Invalidation("other"))
    bus.deliver(Invalidation("acme", "lsk_1"))  # this one concerns it
    await creds.until_checks(2)
    for _ in range(5):
        await asyncio.sleep(0)
    assert creds.checks == 2
    ended.cancel()


async def test_platform_admin_stream_ends_when_its_tenant_is_disabled(
    creds: FakeCredentials, bus: InvalidationBus
) -> None:
    w = watch(creds, bus, principal("admin", "*"), tenant="acme")
    ended = asyncio.ensure_future(w.ended())
    await creds.until_checks(1)
    creds.refuse_tenant = NotFound("Tenant 'acme' is disabled.")
    bus.deliver(Invalidation("acme"))
    reason = await asyncio.wait_for(ended, 1)
    assert close_code(reason) == (4404, "not_found")


async def test_a_change_before_the_watch_ran_is_not_missed(
    creds: FakeCredentials, bus: InvalidationBus
) -> None:
    """Between the authorization and the watch's first turn, a change may have been
    announced: the watch checks once at the start."""
    w = watch(creds, bus)
    creds.refuse = Unauthorized("The API key behind this token was revoked.")
    reason = await asyncio.wait_for(w.ended(), 1)
    assert reason.status == 401


async def test_periodic_check_is_the_fallback(creds: FakeCredentials, bus: InvalidationBus) -> None:
    w = watch(creds, bus)
    w.every = 0.05  # (the setting's floor is 1 s)
    ended = asyncio.ensure_future(w.ended())
    await creds.until_checks(2)  # no announcement: it asks again on its own
    creds.refuse = Unauthorized("Tenant 'acme' is disabled.")
    reason = await asyncio.wait_for(ended, 1)
    assert reason.status == 401


async def test_expiry_ends_the_stream(creds: FakeCredentials, bus: InvalidationBus) -> None:
    w = watch(creds, bus, principal(ttl=1))  # `exp` is whole seconds: within 1 s
    reason = await asyncio.wait_for(w.ended(), 2)
    assert time.time() >= w.principal.expires_at
    assert creds.checks == 1  # the check at the start; then it waited for the expiry
    assert close_code(reason) == (4401, "unauthorized")
    assert "expired" in reason.detail


async def test_storage_trouble_keeps_the_stream(
    creds: FakeCredentials, bus: InvalidationBus
) -> None:
    creds.refuse = Unavailable("Cannot check the credential right now; retry.")
    w = watch(creds, bus)
    ended = asyncio.ensure_future(w.ended())
    await creds.until_checks(1)
    bus.deliver(Invalidation("acme"))
    await creds.until_checks(2)
    assert not ended.done()
    ended.cancel()


async def test_close_stops_listening_and_watching(
    creds: FakeCredentials, bus: InvalidationBus
) -> None:
    w = watch(creds, bus)
    task = w.start()
    await creds.until_checks(1)
    assert bus.has_subscribers
    w.close()
    assert not bus.has_subscribers
    with pytest.raises(asyncio.CancelledError):
        await task


def test_check_interval_has_a_floor(creds: FakeCredentials, bus: InvalidationBus) -> None:
    assert watch(creds, bus, every=0).every == 1.0


# --- limits: slots of the tenant and of the process ----------------------------------
