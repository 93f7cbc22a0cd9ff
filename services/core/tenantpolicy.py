"""Per-tenant settings other services act on, read from the tenant document and cached.

Ingest refuses events older than the tenant's retention (the worker's sweep would
delete them minutes after their 202), so it needs ``retention_days`` on every
request; ingest, queries and the live tail need the tenant's effective
:class:`~services.core.limits.Limits` (defaults from the settings, overridden by
the document's ``limits``). Both come from one read of the tenant document: one
MongoDB read per tenant per ``ttl_seconds`` (the same bound as credential
changes, ``credential_cache_seconds``), concurrent misses of one tenant sharing
that read. ``invalidate``/``clear`` let a change take effect at once;
:meth:`TenantPolicies.on_change` is the callback for the invalidation bus, on
which the tenant service announces every tenant change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.core.credentials import TENANTS
from services.core.invalidation import Invalidation
from services.core.limits import Limits
from services.core.lookupcache import LookupCache

log = logging.getLogger(__name__)


def retention_of(doc: dict[str, Any] | None) -> int:
    """A tenant document's retention in days; 0 means its events are kept forever.

    The one reading of the field: the worker's sweep deletes by it, ingest refuses by it.
    """
    if not doc:
        return 0
    try:
        days = int(doc.get("retention_days") or 0)
    except (TypeError, ValueError):
        return 0
    return max(days, 0)


# No limit at all: what a TenantPolicies built without defaults applies.
UNLIMITED = Limits(0, 0, 0, 0, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """What the services act on about one tenant."""

    retention_days: int
    limits: Limits


class TenantPolicies:
    def __init__(self, db: AsyncDatabase, ttl_seconds: float, defaults: Limits = UNLIMITED) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self.defaults = defaults  # every tenant's limits but those its document overrides
        self._cache: LookupCache[str, TenantPolicy] = LookupCache(ttl_seconds, "tenant policy")

    def policy_of(self, doc: dict[str, Any] | None) -> TenantPolicy:
        """The policy a tenant document (or its absence) stands for."""
        overrides = doc.get("limits") if doc else None
        return TenantPolicy(retention_of(doc), self.defaults.with_overrides(overrides))

    async def _lookup(self, tenant: str) -> TenantPolicy:
        doc = await self.db[TENANTS].find_one({"_id": tenant}, {"retention_days": 1, "limits": 1})
        return self.policy_of(doc)

    async def retention_days(self, tenant: str) -> int:
        """The tenant's retention in days (0: none), at most ``ttl_seconds`` old."""
        return (await self.policy(tenant)).retention_days

    async def limits(self, tenant: str) -> Limits:
        """The tenant's effective limits, at most ``ttl_seconds`` old."""
        return (await self.policy(tenant)).limits

    async def policy(self, tenant: str) -> TenantPolicy:
        """The tenant's policy, at most ``ttl_seconds`` old.

        If MongoDB cannot be asked, the last known value stands (and is not asked
        again before the TTL passes); with none known the answer is retention 0 and
        the default limits, so ingest goes on without the age check rather than
        failing while storage is away.
        """
        return await self._cache.get(
            tenant, lambda: self._lookup(tenant), lambda _exc: self.policy_of(None)
        )

    def invalidate(self, tenant: str) -> None:
        """Forget ``tenant``: the next call reads its document again."""
        self._cache.drop(lambda key, _policy: key == tenant)

    def clear(self) -> None:
        """Forget every tenant (e.g. after missed invalidations)."""
        self._cache.clear()

    def on_change(self, change: Invalidation) -> None:
        """An invalidation-bus callback: forget what ``change`` may have made stale
        (a tenant's retention, limits or status: its entry; after the bus reconnected:
        everything). An API key's change concerns no policy."""
        if change.everything:
            self.clear()
        elif change.key_id is None:  # the tenant itself (an API key's change is not ours)
            self.invalidate(change.tenant)
