"""Rollup upkeep (the worker): recover dead batches and cleanups, compact days, backfill."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.core.logs.model import LOGS
from services.core.logs.rollups.deletes import _finish_cleanup
from services.core.logs.rollups.storage import (
    BACKFILL_ID,
    MIN_TIME,
    PENDING,
    ROLLUPS,
    _at,
    _aware,
    _epoch,
    _insert_ignoring_duplicates,
    count_key,
    delta_docs,
    parse_key,
)

log = logging.getLogger(__name__)


async def recover(db: AsyncDatabase, lease: timedelta, now: datetime | None = None) -> int:
    """Finish the work of dead processes: count the events of attempts older than the
    lease into their deltas, finish cleanups whose marker is older than the lease.
    Returns the markers handled."""
    now = now or datetime.now(UTC)
    stale = await db[PENDING].find({"at": {"$lt": now - lease}}).to_list()
    old_receipts = [
        p["_id"] for p in stale if "receipt" in p and _aware(p["at"]) < now - 10 * lease
    ]
    if old_receipts:
        await db[PENDING].delete_many({"_id": {"$in": old_receipts}})
    handled = 0
    attempts: dict[str, list[dict[str, Any]]] = {}
    for p in stale:
        if "minutes" in p:
            attempts.setdefault(p["tenant_id"], []).append(p)
        elif "ids" in p:
            await _finish_cleanup(db, [p])
            handled += 1
    for tenant_id, markers in attempts.items():
        toks = [m["_id"].rsplit(":", 1)[1] for m in markers]
        lo = min(min(m["minutes"]) for m in markers if m["minutes"])
        hi = max(max(m["minutes"]) for m in markers if m["minutes"]) + 60
        groups = await (
            await db[LOGS].aggregate(
                [
                    {
                        "$match": {
                            "tenant_id": tenant_id,
                            "timestamp": {"$gte": _at(lo), "$lt": _at(hi)},
                            "ra": {"$in": toks},
                        }
                    },
                    {
                        "$group": {
                            "_id": {"r": "$ra", "m": "$minute", "l": "$level", "s": "$service"},
                            "n": {"$sum": 1},
                        }
                    },
                ]
            )
        ).to_list()
        per_token: dict[str, Counter[str]] = {t: Counter() for t in toks}
        for g in groups:
            k = g["_id"]
            per_token[k["r"]][count_key("m", _epoch(k["m"]), k["l"], k.get("s"))] += g["n"]
        # `at`: compaction leaves a recovered delta alone for a lease, in case its batch
        # was only slow and is about to write (and top up) the same delta id.
        deltas = [
            {**d, "at": now} for t, c in per_token.items() for d in delta_docs(tenant_id, t, c)
        ]
        await _insert_ignoring_duplicates(db[ROLLUPS], deltas)
        # A receipt of what was counted, for a batch that was only frozen and finishes
        # later (it then adds the difference); kept for ten leases.
        receipts = [
            {
                "_id": f"{tenant_id}:r:{t}",
                "tenant_id": tenant_id,
                "at": now,
                "receipt": 1,
                "c": dict(c),
            }
            for t, c in per_token.items()
        ]
        await _insert_ignoring_duplicates(db[PENDING], receipts)
        await db[PENDING].delete_many({"_id": {"$in": [m["_id"] for m in markers]}})
        handled += len(markers)
        log.warning(
            "counted the events of batches whose worker died", extra={"batches": len(markers)}
        )
    return handled


async def compact(
    db: AsyncDatabase,
    minute_age: timedelta,
    lease: timedelta,
    now: datetime | None = None,
    min_deltas: int = 4,
) -> int:
    """Merge each tenant-day's deltas into a new base; returns the bases written.

    A day is compacted when it has ``min_deltas`` unabsorbed deltas, or minutes whose
    hour ended more than ``minute_age`` ago (they become hours). Deltas of work still
    pending are left out: its recovery may write them again.
    """
    now = now or datetime.now(UTC)
    last_hour = _epoch(now - minute_age) - 3600  # hours starting at or before: kept as hours
    docs = await db[ROLLUPS].find({}).to_list()
    pending = {
        p["_id"].rsplit(":", 1)[1]
        for p in await db[PENDING].find({"tenant_id": {"$exists": True}}, {"_id": 1}).to_list()
    }
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for d in docs:
        groups.setdefault((d["tenant_id"], _epoch(d["day"])), []).append(d)
    written = 0
    for (tenant_id, day), group in groups.items():
        bases = sorted((d for d in group if "v" in d), key=lambda d: d["v"])
        base = bases[-1] if bases else None
        absorbed = set(base.get("absorbed", [])) if base else set()
        leftovers = [d["_id"] for d in bases[:-1]]
        leftovers += [d["_id"] for d in group if d["_id"] in absorbed]
        if leftovers:  # a compaction that died after writing its base
            await db[ROLLUPS].delete_many({"_id": {"$in": leftovers}})
        fresh = [
            d
            for d in group
            if "v" not in d
            and d["_id"] not in absorbed
            and d["_id"].rsplit(":", 1)[1].rstrip("+") not in pending
            and _aware(d.get("at", MIN_TIME)) < now - lease
        ]
        taken = fresh + ([base] if base else [])
        old_minutes = any(
            k.startswith("m") and int(k[1 : k.index(":")]) <= last_hour + 3599
            for d in taken
            for k in d.get("c") or {}
        )
        if len(fresh) < min_deltas and not (fresh and old_minutes):
            continue
        merged: Counter[str] = Counter()
        for d in taken:
            for k, n in (d.get("c") or {}).items():
                span, epoch, level, service = parse_key(k)
                hour = epoch - epoch % 3600
                if span == "m" and hour <= last_hour:
                    k = count_key("h", hour, level, service)
                merged[k] += n
        v = (base["v"] if base else 0) + 1
        new_base = {
            "_id": f"{tenant_id}:{day}:b:{v}",
            "tenant_id": tenant_id,
            "day": _at(day),
            "v": v,
            "absorbed": [d["_id"] for d in fresh],
            "c": {k: n for k, n in merged.items() if n},
        }
        try:
            await db[ROLLUPS].insert_one(new_base)
        except DuplicateKeyError:
            continue  # another worker compacted this day first
        written += 1
        await db[ROLLUPS].delete_many({"_id": {"$in": [d["_id"] for d in taken]}})
    return written


async def backfill(db: AsyncDatabase) -> bool:
    """Once per storage: count the events stored before rollups existed (those without
    ``ra``) into one delta per tenant-day, then declare rollups ready. Returns True if
    this call did it. Run again after a crash it writes the same delta ids."""
    state = await db[PENDING].find_one({"_id": BACKFILL_ID})
    if state and state.get("done"):
        return False
    groups = await (
        await db[LOGS].aggregate(
            [
                {"$match": {"ra": {"$exists": False}}},
                {
                    "$group": {
                        "_id": {"t": "$tenant_id", "m": "$minute", "l": "$level", "s": "$service"},
                        "n": {"$sum": 1},
                    }
                },
            ]
        )
    ).to_list()
    per_tenant: dict[str, Counter[str]] = {}
    for g in groups:
        k = g["_id"]
        if k.get("m") is None or k.get("t") is None:
            continue
        per_tenant.setdefault(k["t"], Counter())[
            count_key("m", _epoch(k["m"]), k["l"], k.get("s"))
        ] += g["n"]
    deltas = [d for t, c in per_tenant.items() for d in delta_docs(t, "backfill", c)]
    for i in range(0, len(deltas), 500):
        await _insert_ignoring_duplicates(db[ROLLUPS], deltas[i : i + 500])
    with contextlib.suppress(DuplicateKeyError):
        await db[PENDING].insert_one({"_id": BACKFILL_ID, "done": True, "at": datetime.now(UTC)})
    log.info("rollups backfilled", extra={"tenants": len(per_tenant)})
    return True
