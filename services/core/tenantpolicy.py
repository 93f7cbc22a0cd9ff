"""Per-tenant settings other services act on, read from the tenant document and cached.

Ingest refuses events older than the tenant's retention (the worker's sweep would
delete them minutes after their 202), so it needs ``retention_days`` on every
request: one MongoDB read per tenant per ``ttl_seconds`` (the same bound as
credential changes, ``credential_cache_seconds``), concurrent misses of one tenant
sharing that read. A change takes effect at once through ``on_change``, subscribed
to the invalidation bus (``invalidate``/``clear`` underneath); the TTL bounds what
the bus could not deliver.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.core.credentials import TENANTS
from services.core.invalidation import Invalidation
from services.core.singleflight import SingleFlight

log = logging.getLogger(__name__)
MAX_ENTRIES = 50_000  # tenants; beyond that the cache starts over rather than grow


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


@dataclass(slots=True)
class _Entry:
    retention_days: int
    checked_at: float


class TenantPolicies:
    def __init__(self, db: AsyncDatabase, ttl_seconds: float) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._cache: dict[str, _Entry] = {}
        self._lookups: SingleFlight[int] = SingleFlight()
        # Bumped by invalidate/clear: a read that began before must neither be joined
        # by later callers nor cached, since it may predate the change.
        self._generation = 0

    async def _lookup(self, tenant: str) -> int:
        doc = await self.db[TENANTS].find_one({"_id": tenant}, {"retention_days": 1})
        return retention_of(doc)

    async def retention_days(self, tenant: str) -> int:
        """The tenant's retention in days (0: none), at most ``ttl_seconds`` old.

        If MongoDB cannot be asked, the last known value stands (and is not asked
        again before the TTL passes); with none known the answer is 0, so ingest
        goes on without the age check rather than failing while storage is away.
        """
        now = time.monotonic()
        entry = self._cache.get(tenant)
        if entry is not None and now - entry.checked_at < self.ttl:
            return entry.retention_days
        generation = self._generation
        try:
            days = await self._lookups.run((tenant, generation), lambda: self._lookup(tenant))
        except Exception as exc:
            log.warning(
                "tenant retention lookup failed", extra={"tenant": tenant, "error": str(exc)}
            )
            if entry is None:
                entry = _Entry(0, now)
                self._store(tenant, entry)
            entry.checked_at = now
            return entry.retention_days
        if generation == self._generation:
            self._store(tenant, _Entry(days, now))
        return days

    def _store(self, tenant: str, entry: _Entry) -> None:
        if len(self._cache) >= MAX_ENTRIES and tenant not in self._cache:
            self._cache.clear()
        self._cache[tenant] = entry

    def invalidate(self, tenant: str) -> None:
        """Forget ``tenant``: the next call reads its document again."""
        self._generation += 1
        self._cache.pop(tenant, None)

    def clear(self) -> None:
        """Forget every tenant (e.g. after missed invalidations)."""
        self._generation += 1
        self._cache.clear()

    def on_change(self, change: Invalidation) -> None:
        """An invalidation-bus callback: forget what ``change`` may have made stale."""
        if change.everything:
            self.clear()
        elif change.key_id is None:  # the tenant itself (an API key's change is not ours)
            self.invalidate(change.tenant)
