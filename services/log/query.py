"""Reads and deletes on the `logs` collection, always scoped to one tenant.

Every query is built by :meth:`LogFilter.to_mongo`, which starts from the
tenant, so no code path here can read or delete across tenants. The one
exception is the read by id: its ``_id`` (``{tenant}:{id}``) holds the tenant,
and the stored event's tenant is checked again before it is returned.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout

from services.core.errors import NotFound, QueryTimeout, ValidationFailed
from services.core.logfilters import LogFilter
from services.core.logmodel import LOGS, doc_id, document_to_api

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
STATS_BY = {"level": "level", "service": "service", "action": "action"}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def _stat_key(value: Any) -> str:
    """A stats group's name: events without the field count under "(none)"."""
    return str(value) if value is not None else "(none)"


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def roll_up(groups: list[dict[str, Any]], step: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """``$group`` results by ``{"m": minute, "k": value}`` -> (counts per value, histogram).

    The histogram has one entry per ``step``-second bucket that holds events, in time
    order: ``{"start", "count", "counts": {value: n}}`` (the console stacks its bars
    by level from ``counts``). Events without a minute count in ``counts`` only.
    """
    counts: dict[str, int] = {}
    buckets: dict[int, dict[str, int]] = {}
    for g in groups:
        key = _stat_key(g["_id"].get("k"))
        counts[key] = counts.get(key, 0) + g["count"]
        minute = g["_id"].get("m")
        if minute is None:
            continue
        epoch = int(minute.timestamp())
        per_key = buckets.setdefault(epoch - epoch % step, {})
        per_key[key] = per_key.get(key, 0) + g["count"]
    histogram = [
        {
            "start": datetime.fromtimestamp(start, UTC),
            "count": sum(buckets[start].values()),
            "counts": _by_count(buckets[start]),
        }
        for start in sorted(buckets)
    ]
    return counts, histogram


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

    def __init__(self, db: AsyncDatabase, query_timeout_seconds: float = 30.0) -> None:
        self.logs = db[LOGS]
        self.timeout_s = query_timeout_seconds
        self.max_time_ms = max(1, int(query_timeout_seconds * 1000))

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
            with self._bounded():
                meta["total"] = await self.logs.count_documents(query, maxTimeMS=self.max_time_ms)
        return Page([document_to_api(d) for d in docs], meta)

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
        match = flt.to_mongo(tenant_id)
        field = STATS_BY[by]
        # One pass over the matching events: by the field alone, or with a histogram by
        # (minute, field). FerretDB v1 has no $dateTrunc: the minute bucket is stored at
        # write time and rolled up into the requested interval here.
        group_id: Any = {"m": "$minute", "k": f"${field}"} if interval else f"${field}"
        with self._bounded():
            groups = await (
                await self.logs.aggregate(
                    [{"$match": match}, {"$group": {"_id": group_id, "count": {"$sum": 1}}}],
                    maxTimeMS=self.max_time_ms,
                )
            ).to_list()
        if interval:
            counts, histogram = roll_up(groups, INTERVALS[interval])
        else:
            counts = {}
            for g in groups:
                counts[_stat_key(g["_id"])] = counts.get(_stat_key(g["_id"]), 0) + g["count"]
        result: dict[str, Any] = {
            "by": by,
            "total": sum(counts.values()),
            "counts": _by_count(counts),
        }
        if interval:
            result["interval"] = interval
            result["histogram"] = histogram
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
        result = await self.logs.delete_many(query)
        return result.deleted_count
