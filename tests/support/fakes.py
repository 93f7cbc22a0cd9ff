"""Fakes shared between test packages: a clock moved by hand, the tenant policy cache."""

from __future__ import annotations

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
