"""Per-tenant limits: their names, defaults (settings) and a tenant's effective values.

A tenant document may hold ``limits``: overrides of some of the fields below
(set by a platform admin, ``PATCH /api/v1/tenants/{key}``). Every field not
overridden takes its default from the settings (``LOGSERVER_LIMIT_<FIELD>``).
A value of 0 means "no limit", except ``ingest_burst``, where 0 means one
second's worth of ``ingest_events_per_second``.

What enforces each one: ingest admission (``services/log/admission.py``: the
three ingest fields and ``daily_events``), the query gate
(``services/log/querygate.py``: the three query fields) and the live tail
(``services/broadcast/stream.py``: ``max_concurrent_tails``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from pydantic import Field

from services.core.settings import CoreSettings

log = logging.getLogger(__name__)

# Larger values are refused by the tenant API: they are "no limit" in all but name,
# and every value must stay exact as a double in the Redis script (< 2**53).
MAX_LIMIT_VALUE = 10**12


@dataclass(frozen=True, slots=True)
class Limits:
    """A tenant's effective limits (0 = no limit; see the module docstring)."""

    ingest_events_per_second: int
    ingest_burst: int
    ingest_bytes_per_second: int
    daily_events: int
    max_concurrent_queries: int
    max_query_range_hours: int
    max_export_events: int
    max_concurrent_tails: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Limits:
        """These limits with a tenant document's ``limits`` applied. A value that is not
        a whole number ≥ 0 (the API refuses those; a hand edit might not) is ignored."""
        if not overrides or not isinstance(overrides, Mapping):
            return self
        changes: dict[str, int] = {}
        for name in LIMIT_FIELDS:
            value = overrides.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                log.warning("ignoring an invalid tenant limit", extra={name: repr(value)[:40]})
                continue
            changes[name] = min(value, MAX_LIMIT_VALUE)
        return replace(self, **changes) if changes else self

    # --- the ingest token buckets ----------------------------------------------------

    @property
    def event_capacity(self) -> int:
        """Events the bucket holds: the burst a tenant may send at once."""
        return self.ingest_burst or self.ingest_events_per_second

    @property
    def burst_seconds(self) -> float:
        """How many seconds of traffic the buckets hold (the bytes bucket holds as many
        seconds as the events bucket, and at least one)."""
        if self.ingest_events_per_second <= 0:
            return 1.0
        return max(1.0, self.event_capacity / self.ingest_events_per_second)

    @property
    def byte_capacity(self) -> int:
        return int(self.ingest_bytes_per_second * self.burst_seconds)


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Limits))

DESCRIPTIONS: dict[str, str] = {
    "ingest_events_per_second": "Events a tenant may ingest per second, over every log "
    "service replica and ingest endpoint (token bucket in Redis). 0: no limit.",
    "ingest_burst": "Events a tenant may send at once above its rate (the bucket size). "
    "0: one second's worth of ingest_events_per_second.",
    "ingest_bytes_per_second": "Bytes of events (as queued, JSON) a tenant may ingest per "
    "second; the bucket holds as many seconds as the events bucket. 0: no limit.",
    "daily_events": "Events a tenant may ingest per UTC day. 0: no quota.",
    "max_concurrent_queries": "Searches, stats and exports a tenant may run at once, over "
    "every log service replica. 0: no limit.",
    "max_query_range_hours": "Widest time range (from/to) of one search, stats or export; "
    "with a limit, a query must give `from`. 0: no limit.",
    "max_export_events": "Most events one export returns (the rest is cut off and the "
    "response says so). 0: no limit.",
    "max_concurrent_tails": "Live-tail streams a tenant may hold open at once, over every "
    "broadcast replica. 0: no limit.",
}


def _limit(default: int, name: str) -> Any:
    return Field(default, ge=0, le=MAX_LIMIT_VALUE, description=DESCRIPTIONS[name])


class LimitSettings(CoreSettings):
    """The default limits of every tenant, read by the services that show or enforce them."""

    limit_ingest_events_per_second: int = _limit(50_000, "ingest_events_per_second")
    limit_ingest_burst: int = _limit(100_000, "ingest_burst")
    limit_ingest_bytes_per_second: int = _limit(64 * 1024 * 1024, "ingest_bytes_per_second")
    limit_daily_events: int = _limit(0, "daily_events")
    limit_max_concurrent_queries: int = _limit(8, "max_concurrent_queries")
    limit_max_query_range_hours: int = _limit(0, "max_query_range_hours")
    limit_max_export_events: int = _limit(1_000_000, "max_export_events")
    limit_max_concurrent_tails: int = _limit(50, "max_concurrent_tails")

    @property
    def default_limits(self) -> Limits:
        return Limits(**{name: getattr(self, f"limit_{name}") for name in LIMIT_FIELDS})
