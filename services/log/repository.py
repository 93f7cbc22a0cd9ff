"""Reads and deletes on the `logs` collection, always scoped to one tenant.

Every query is built by :meth:`LogFilter.to_mongo`, which starts from the
tenant, so no code path here can read or delete across tenants. The one
exception is the read by id: its ``_id`` (``{tenant}:{id}``) holds the tenant,
and the stored event's tenant is checked again before it is returned.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as redis
from prometheus_client import Counter as Metric
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout

from services.core.errors import NotFound, QueryTimeout, ValidationFailed
from services.core.logs import ring
from services.core.logs.filters import LogFilter
from services.core.logs.model import LOGS, doc_id, document_to_api
from services.core.logs.rollups import (
    PENDING,
    ROLLUPS,
    answerable,
    current,
    day_query,
    delete_counted,
    dirty_minutes,
    is_ready,
    plan,
    ranges_query,
    tenant_lock,
)

log = logging.getLogger(__name__)
COUNTS = Metric(
    "logserver_log_counts_total",
    "Counts (stats, totals) by where they came from: rollups, rollups+events (edge or "
    "dirty buckets), events (filters rollups cannot answer), events_capped (bounded count)",
    ["source"],
)

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
STATS_BY = {"level": "level", "service": "service", "action": "action"}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def _stat_key(value: Any) -> str:
    """A stats group's name: events without the field count under "(none)"."""
    return str(value) if value is not None else "(none)"


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def group_counts(
    groups: list[dict[str, Any]], step: int | None
) -> tuple[Counter[str], dict[int, Counter[str]]]:
    """``$group`` results by ``{"k": value[, "m": minute]}`` -> (counts per value, counts
    per ``step``-second bucket start and value). Events without a minute count in the
    counts per value only."""
    counts: Counter[str] = Counter()
    buckets: dict[int, Counter[str]] = {}
    for g in groups:
        key = _stat_key(g["_id"].get("k"))
        counts[key] += g["count"]
        minute = g["_id"].get("m")
        if step and minute is not None:
            epoch = int(minute.timestamp())
            buckets.setdefault(epoch - epoch % step, Counter())[key] += g["count"]
    return counts, buckets


def histogram(buckets: dict[int, Counter[str]]) -> list[dict[str, Any]]:
    """One entry per bucket that holds events, in time order:
    ``{"start", "count", "counts": {value: n}}`` (the console stacks its bars by level
    from ``counts``)."""
    out = []
    for start in sorted(buckets):
        per_key = {k: n for k, n in buckets[start].items() if n}
        if per_key:
            out.append(
                {
                    "start": datetime.fromtimestamp(start, UTC),
                    "count": sum(per_key.values()),
                    "counts": _by_count(per_key),
                }
            )
    return out


def roll_up(groups: list[dict[str, Any]], step: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """``$group`` results -> (counts per value, histogram)."""
    counts, buckets = group_counts(groups, step)
    return dict(counts), histogram(buckets)


def encode_cursor(doc: dict[str, Any], descending: bool) -> str:
    ts: datetime = doc["timestamp"]
    ms = int(ts.timestamp() * 1000)
    raw = orjson.dumps([ms, doc["id"], "d" if descending else "a"])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, descending: bool) -> tuple[datetime, str]:
    try:
        ms, event_id, direction = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        ts = datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, TypeError, OverflowError, OSError, orjson.JSONDecodeError):
        raise _invalid("cursor", "not a cursor this API returned") from None
    if direction != ("d" if descending else "a") or not isinstance(event_id, str):
        raise _invalid("cursor", "belongs to a different sort order")
    return ts, event_id


@dataclass
class Page:
    items: list[dict[str, Any]]
    meta: dict[str, Any]


class LogRepository:
    """Reads and deletes of one tenant's events.

    Searches, counts and stats carry ``maxTimeMS``: the storage stops a query that
    runs longer (a client that gave up does not stop it otherwise, and on FerretDB
    a broad filter over a big tenant scans for minutes). Exports are not bounded:
    they stream for as long as the client reads.
    """

    def __init__(
        self,
        db: AsyncDatabase,
        query_timeout_seconds: float = 30.0,
        *,
        count_limit: int = 10_000,
        rollup_lease_seconds: float = 120.0,
        use_rollups: bool = True,
        redis_client: redis.Redis | None = None,
    ) -> None:
        self.db = db
        self.logs = db[LOGS]
        self.timeout_s = query_timeout_seconds
        self.max_time_ms = max(1, int(query_timeout_seconds * 1000))
        self.count_limit = count_limit
        self.lease = timedelta(seconds=rollup_lease_seconds)
        self.use_rollups = use_rollups
        self.redis = redis_client
        self._rollups_ready = False  # once true (backfilled), true for good

    @contextlib.contextmanager
    def _bounded(self) -> Iterator[None]:
        try:
            yield
        except ExecutionTimeout:
            raise QueryTimeout(
                f"The query ran longer than {self.timeout_s:g} s and was stopped. Narrow it: "
                "a shorter time range (from/to) or more filters."
            ) from None

    async def search(
        self,
        tenant_id: str,
        flt: LogFilter,
        *,
        descending: bool = True,
        limit: int = 50,
        cursor: str | None = None,
        page: int | None = None,
        with_total: bool = False,
    ) -> Page:
        if limit == 0:  # a count only
            total, relation = await self.total(tenant_id, flt)
            return Page([], {"limit": 0, "total": total, "total_relation": relation})
        query = flt.to_mongo(tenant_id)
        order = DESCENDING if descending else ASCENDING
        if cursor is not None:  # an empty cursor= is malformed, not "first page"
            ts, event_id = decode_cursor(cursor, descending)
            op = "$lt" if descending else "$gt"
            keyset = {"$or": [{"timestamp": {op: ts}}, {"timestamp": ts, "id": {op: event_id}}]}
            find_query = {"$and": [query, keyset]}
        else:
            find_query = query
        found = self.logs.find(find_query, max_time_ms=self.max_time_ms).sort(
            [("timestamp", order), ("id", order)]
        )
        if page is not None:
            found = found.skip((page - 1) * limit)
        with self._bounded():
            docs = await found.limit(limit + 1).to_list()
        has_more = len(docs) > limit
        docs = docs[:limit]
        meta: dict[str, Any] = {"limit": limit, "has_more": has_more}
        if page is not None:
            meta["page"] = page
            meta["size"] = limit
        meta["next_cursor"] = encode_cursor(docs[-1], descending) if has_more and docs else None
        if with_total:
            meta["total"], meta["total_relation"] = await self.total(tenant_id, flt)
        return Page([document_to_api(d) for d in docs], meta)

    async def total(self, tenant_id: str, flt: LogFilter) -> tuple[int, str]:
        """How many events match: exact from rollups where they can answer; else counted
        up to ``count_limit`` (``"gte"`` beyond it, as Elasticsearch's track_total_hits)."""
        counted = await self._from_rollups(tenant_id, flt, "level", None)
        if counted is not None:
            return sum(counted[0].values()), "eq"
        with self._bounded():
            n = await self.logs.count_documents(
                flt.to_mongo(tenant_id), limit=self.count_limit + 1, maxTimeMS=self.max_time_ms
            )
        if n > self.count_limit:
            COUNTS.labels("events_capped").inc()
            return self.count_limit, "gte"
        COUNTS.labels("events").inc()
        return n, "eq"

    async def _ready(self) -> bool:
        if self.use_rollups and not self._rollups_ready:
            self._rollups_ready = await is_ready(self.db)
        return self._rollups_ready

    async def _from_rollups(
        self, tenant_id: str, flt: LogFilter, by: str, step: int | None
    ) -> tuple[Counter[str], dict[int, Counter[str]]] | None:
        """Counts per ``by`` value, and per histogram start and value, from the rollups,
        with edge and dirty minutes counted from the events; None if rollups cannot
        answer."""
        if not answerable(flt, by) or not await self._ready():
            return None
        with self._bounded():
            docs = await (
                self.db[ROLLUPS].find(day_query(tenant_id, flt), max_time_ms=self.max_time_ms)
            ).to_list()
            pending = await (
                self.db[PENDING].find({"tenant_id": tenant_id}, max_time_ms=self.max_time_ms)
            ).to_list()
        dirty = dirty_minutes(pending, datetime.now(UTC) - self.lease)
        p = plan(current(docs), dirty, flt, step)
        counts: Counter[str] = Counter()
        buckets: dict[int, Counter[str]] = {}
        for (start, level, service), n in p.counts.items():
            key = _stat_key(level if by == "level" else service)
            counts[key] += n
            buckets.setdefault(start, Counter())[key] += n
        if p.event_ranges:
            match = ranges_query(flt.to_mongo(tenant_id), p.event_ranges)
            more, more_buckets = await self._group(match, STATS_BY[by], step)
            counts.update(more)
            for start, c in more_buckets.items():
                buckets.setdefault(start, Counter()).update(c)
        COUNTS.labels("rollups+events" if p.event_ranges else "rollups").inc()
        return counts, buckets

    async def _group(
        self, match: dict[str, Any], field: str, step: int | None
    ) -> tuple[Counter[str], dict[int, Counter[str]]]:
        """Events per ``field`` value and, with ``step``, per histogram start and value, in
        one pass. FerretDB v1 has no $dateTrunc: the minute bucket is stored at write time
        and rolled up into the requested interval here."""
        group_id: dict[str, str] = {"k": f"${field}"}
        if step:
            group_id["m"] = "$minute"
        with self._bounded():
            groups = await (
                await self.logs.aggregate(
                    [{"$match": match}, {"$group": {"_id": group_id, "count": {"$sum": 1}}}],
                    maxTimeMS=self.max_time_ms,
                )
            ).to_list()
        return group_counts(groups, step)

    async def get(self, tenant_id: str, event_id: str) -> dict[str, Any]:
        # By `_id` alone: FerretDB v1 pushes a filter down to SQLite only when `_id` is its
        # sole key (with `tenant_id` beside it, it read the whole collection in Go: 17 s
        # on 100,000 events). The `_id` holds the tenant; its field is still checked.
        doc = await self.logs.find_one({"_id": doc_id(tenant_id, event_id)})
        if doc is None or doc.get("tenant_id") != tenant_id:
            raise NotFound(f"No log event '{event_id}' in this tenant (yet).")
        return document_to_api(doc)

    async def stats(
        self, tenant_id: str, flt: LogFilter, *, by: str, interval: str | None
    ) -> dict[str, Any]:
        step = INTERVALS[interval] if interval else None
        counted = await self._from_rollups(tenant_id, flt, by, step)
        if counted is None:
            counted = await self._group(flt.to_mongo(tenant_id), STATS_BY[by], step)
            COUNTS.labels("events").inc()
        all_counts, buckets = counted
        counts = {k: n for k, n in all_counts.items() if n}
        result: dict[str, Any] = {
            "by": by,
            "total": sum(counts.values()),
            "counts": _by_count(counts),
        }
        if interval:
            result["interval"] = interval
            result["histogram"] = histogram(buckets)
        return result

    async def count_upto(self, tenant_id: str, flt: LogFilter, upto: int) -> int | None:
        """How many events match, counting no further than ``upto``; None if the count
        ran out of time (``maxTimeMS``)."""
        try:
            return await self.logs.count_documents(
                flt.to_mongo(tenant_id), limit=upto, maxTimeMS=self.max_time_ms
            )
        except ExecutionTimeout:
            return None

    async def stream(
        self, tenant_id: str, flt: LogFilter, *, descending: bool, limit: int | None
    ) -> AsyncIterator[dict[str, Any]]:
        order = DESCENDING if descending else ASCENDING
        found = (
            self.logs.find(flt.to_mongo(tenant_id))
            .sort([("timestamp", order), ("id", order)])
            .batch_size(1000)
        )
        if limit:
            found = found.limit(limit)
        async with found:
            async for doc in found:
                yield document_to_api(doc)

    async def cleanup(
        self,
        tenant_id: str,
        flt: LogFilter,
        *,
        before: datetime | None,
        older_than_days: int | None,
        match_all: bool,
    ) -> int:
        query = flt.to_mongo(tenant_id)
        bound = before
        if older_than_days is not None:
            cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
            bound = min(bound, cutoff) if bound else cutoff
        if bound is not None:
            rng = dict(query.get("timestamp", {}))
            rng["$lt"] = min(rng["$lt"], bound) if "$lt" in rng else bound
            query["timestamp"] = rng
        elif not match_all:
            raise _invalid(
                "before",
                "give before=<RFC 3339>, older_than_days=<n>, or all=true to delete every "
                "matching event",
            )
        if self.use_rollups:
            # The deleted events are subtracted from the rollups exactly (one delete per
            # tenant at a time; a second one meanwhile is 409).
            async with tenant_lock(self.db, tenant_id, self.lease, wait=self.timeout_s):
                deleted = await delete_counted(self.db, query)
        else:
            deleted = (await self.logs.delete_many(query)).deleted_count
        if deleted and self.redis is not None:
            try:  # deleted events must not be replayed from the ring
                await ring.invalidate_now(self.redis, tenant_id)
            except Exception as exc:
                log.warning("ring invalidation failed", extra={"error": str(exc)[:300]})
        return deleted
