"""Fakes shared between test packages: a clock moved by hand, the tenant policy cache,
a semaphore that says when someone waits on it."""

from __future__ import annotations

import asyncio
import time

from services.core.limits import Limits
from services.core.tenantpolicy import UNLIMITED


class FakeClock:
    """A clock the test moves by hand.

    It stands in for ``time.monotonic`` (call it) or for the ``time`` module a module
    under test imported (``monotonic()`` and ``time()``): ``now`` is the monotonic
    reading, ``wall`` the epoch seconds (the real ones at creation, so tokens and
    timestamps stay plausible); ``advance`` moves both, as time does.
    """

    def __init__(self, now: float = 1_000.0, wall: float | None = None) -> None:
        self.now = now
        self.wall = time.time() if wall is None else wall

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall += seconds


class FakePolicies:
    """The tenant policy cache (``TenantPolicies``) with the same answer for every tenant."""

    def __init__(self, limits: Limits = UNLIMITED, retention_days: int = 0) -> None:
        self._limits = limits
        self._retention_days = retention_days  # 0: kept forever, nothing is too old

    async def limits(self, tenant: str) -> Limits:
        return self._limits

    async def retention_days(self, tenant: str) -> int:
        return self._retention_days


class WatchedSemaphore(asyncio.Semaphore):
    """A semaphore whose ``blocked`` event is set once an ``acquire`` has to wait.

    Swapped in for the one a class under test holds, it turns "nothing happened
    yet" into a state a test can wait on (with a deadline) instead of sleeping.
    """

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self.blocked = asyncio.Event()

    async def acquire(self) -> bool:
        if self.locked():
            self.blocked.set()
        return await super().acquire()
