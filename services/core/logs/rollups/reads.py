"""Reading rollups: which counts they answer, and which ranges must come from the events."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.core.logs.filters import LogFilter
from services.core.logs.model import LEVEL_NO
from services.core.logs.rollups.storage import (
    BACKFILL_ID,
    PENDING,
    _at,
    _aware,
    _day_of,
    _epoch,
    parse_key,
)


def answerable(flt: LogFilter, by: str | None = None) -> bool:
    """Can rollups answer this filter (and grouping)? Tenant, time, level and service only."""
    if flt.substrings or flt.attributes:
        return False
    if any(name != "service" for name, _ in flt.exact):
        return False
    return by in (None, "level", "service")


def _key_matches(flt: LogFilter, level: str, service: str | None) -> bool:
    if flt.levels and level not in flt.levels:
        return False
    if flt.min_level and LEVEL_NO.get(level, 0) < LEVEL_NO[flt.min_level]:
        return False
    return all(service == value for name, value in flt.exact if name == "service")


def current(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per day: the newest base and the deltas it did not absorb."""
    days: dict[int, list[dict[str, Any]]] = {}
    for d in docs:
        days.setdefault(_epoch(d["day"]), []).append(d)
    out = []
    for group in days.values():
        bases = [d for d in group if "v" in d]
        base = max(bases, key=lambda d: d["v"]) if bases else None
        absorbed = set(base.get("absorbed", [])) if base else set()
        if base:
            out.append(base)
        out.extend(d for d in group if "v" not in d and d["_id"] not in absorbed)
    return out


def dirty_minutes(pending: list[dict[str, Any]], stale_before: datetime) -> set[int]:
    """Minutes whose rollups cannot be trusted now: those of a dead batch (stored events
    not yet counted) and those of a cleanup in progress (events going, not yet counted)."""
    out: set[int] = set()
    for p in pending:
        if "minutes" in p and _aware(p["at"]) < stale_before:
            out.update(p["minutes"])
        elif "ids" in p:
            out.update(parse_key(k)[1] for k in p.get("c", {}))
    return out


@dataclass
class Plan:
    """What a read takes from the rollups (per (histogram start, level, service)) and
    which time ranges it counts from the events instead."""

    counts: Counter[tuple[int, str, str | None]] = field(default_factory=Counter)
    event_ranges: list[tuple[datetime, datetime]] = field(default_factory=list)


def plan(docs: list[dict[str, Any]], dirty: set[int], flt: LogFilter, step: int | None) -> Plan:
    """Split a read over ``docs`` (the current bases and deltas of the filter's days)
    into rollup counts and event ranges.

    A minute comes from the rollups when it lies wholly in the range and is not
    dirty; an hour (older data) when it lies wholly in the range, holds no dirty
    minute and the histogram step is at least an hour. Anything else in range — at
    most the two edges, the dirty minutes, an hour under a finer histogram — is
    counted from the events (an hour that goes to the events takes its minutes
    with it).
    """
    qs = _epoch(flt.start) if flt.start else None
    qe = _epoch(flt.end) if flt.end else None

    def inside(s: int, e: int) -> bool:
        return (qs is None or qs <= s) and (qe is None or e <= qe)

    def overlaps(s: int, e: int) -> bool:
        return (qe is None or s < qe) and (qs is None or qs < e)

    totals: Counter[str] = Counter()
    for d in docs:
        totals.update(d.get("c") or {})
    keys = [(parse_key(k), n) for k, n in totals.items() if n]
    dirty_hours = {m - m % 3600 for m in dirty}
    hours = {e for (span, e, _, _), _ in keys if span == "h"}
    event_hours = {
        h
        for h in hours | (dirty_hours & hours)
        if overlaps(h, h + 3600)
        and (not inside(h, h + 3600) or (step is not None and step < 3600) or h in dirty_hours)
    }
    minutes = {e for (span, e, _, _), _ in keys if span == "m"} | dirty
    event_minutes = {
        m
        for m in minutes
        if m - m % 3600 not in event_hours
        and overlaps(m, m + 60)
        and (not inside(m, m + 60) or m in dirty)
    }
    out = Plan()
    for (span, epoch, level, service), n in keys:
        width = 3600 if span == "h" else 60
        if not inside(epoch, epoch + width):
            continue
        hour = epoch - epoch % 3600
        if hour in event_hours or (span == "m" and epoch in event_minutes):
            continue
        if not _key_matches(flt, level, service):
            continue
        out.counts[(epoch - epoch % step if step else 0, level, service)] += n
    ranges = [(h, h + 3600) for h in event_hours] + [(m, m + 60) for m in event_minutes]
    clipped = []
    for s, e in ranges:
        s, e = max(s, qs) if qs is not None else s, min(e, qe) if qe is not None else e
        if s < e:
            clipped.append((_at(s), _at(e)))
    out.event_ranges = merge(clipped)
    return out


def merge(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def day_query(tenant_id: str, flt: LogFilter) -> dict[str, Any]:
    """The rollup documents a read over ``flt``'s range needs."""
    query: dict[str, Any] = {"tenant_id": tenant_id}
    rng: dict[str, datetime] = {}
    if flt.start:
        rng["$gte"] = _at(_day_of(_epoch(flt.start)))
    if flt.end:
        rng["$lt"] = flt.end
    if rng:
        query["day"] = rng
    return query


def ranges_query(base: dict[str, Any], ranges: list[tuple[datetime, datetime]]) -> dict[str, Any]:
    """``base`` (a `logs` query) narrowed to the union of ``ranges``."""
    query = dict(base)
    query.pop("timestamp", None)
    clauses = [{"timestamp": {"$gte": s, "$lt": e}} for s, e in ranges]
    if len(clauses) == 1:
        query.update(clauses[0])
    else:
        query["$or"] = clauses
    return query


async def is_ready(db: AsyncDatabase) -> bool:
    state = await db[PENDING].find_one({"_id": BACKFILL_ID})
    return bool(state and state.get("done"))
