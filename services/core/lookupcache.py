"""A per-key cache of storage lookups that announced changes invalidate.

Credential status (:mod:`services.core.credentials`), API-key checks
(:mod:`services.core.apikeys`) and tenant policies (:mod:`services.core.tenantpolicy`)
are asked on nearly every request and change rarely; all three keep MongoDB's
answers in a :class:`LookupCache`, which holds the rules they share:

- an answer is fresh for ``ttl`` seconds (the fallback bound: changes are
  announced on the invalidation bus and dropped at once with :meth:`drop`/:meth:`clear`);
- one lookup per key at a time: when an entry expires under load, the concurrent
  requests of that key share one query instead of stampeding the storage;
- every invalidation bumps a generation: a lookup that began before it may have
  read the old state, so its answer is neither cached nor shared afterwards;
- storage unreachable: the last known answer stands and is not asked for again
  before the TTL passes (failing every request of a credential that was valid a
  moment ago, each after a timeout, would turn a storage blip into an outage);
  with none known, the caller's ``fallback`` decides (raise, or a default that is
  then cached like an answer);
- at most :attr:`LookupCache.MAX_ENTRIES` entries; a full cache starts over rather
  than grow (entries refill on demand).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.core.singleflight import SingleFlight

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
log = logging.getLogger(__name__)


@dataclass(slots=True)
class Entry(Generic[V]):
    value: V
    checked_at: float


class LookupCache(Generic[K, V]):
    """MongoDB's answers per key, with the rules in the module docstring."""

    MAX_ENTRIES = 50_000

    def __init__(self, ttl_seconds: float, what: str) -> None:
        self.ttl = ttl_seconds
        self.what = what  # for the log line when the storage cannot be asked
        self._entries: dict[K, Entry[V]] = {}
        self._lookups: SingleFlight[V] = SingleFlight()
        self._generation = 0

    def fresh(self, key: K) -> Entry[V] | None:
        """The entry of ``key`` if it is younger than the TTL, without a coroutine."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.checked_at < self.ttl:
            return entry
        return None

    async def get(
        self,
        key: K,
        lookup: Callable[[], Awaitable[V]],
        fallback: Callable[[Exception], V],
    ) -> V:
        """The fresh answer for ``key``, else ``lookup()``'s (shared by concurrent callers).

        If the lookup fails, the last known answer stands; with none (or one an
        invalidation dropped meanwhile), ``fallback(exc)`` raises or gives the answer.
        """
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry.checked_at < self.ttl:
            return entry.value
        generation = self._generation
        try:
            value = await self._lookups.run((key, generation), lookup)
        except Exception as exc:
            log.warning(f"{self.what} lookup failed", extra={"error": str(exc)[:300]})
            if entry is not None and generation == self._generation:
                entry.checked_at = now  # not asked again (nor waited on) before the TTL
                return entry.value
            value = fallback(exc)
        if generation == self._generation:  # no change announced while we asked
            if len(self._entries) >= self.MAX_ENTRIES and key not in self._entries:
                self._entries.clear()
            self._entries[key] = Entry(value, now)
        return value

    def drop(self, stale: Callable[[K, V], bool]) -> None:
        """Forget every answer ``stale(key, value)`` says a change may have outdated."""
        self._generation += 1
        for key in [k for k, e in self._entries.items() if stale(k, e.value)]:
            del self._entries[key]

    def clear(self) -> None:
        """Forget everything (e.g. after the invalidation bus reconnected)."""
        self._generation += 1
        self._entries.clear()
