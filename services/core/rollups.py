"""Write-time rollups of the `logs` collection: event counts per tenant, minute (hour
for older events), level and service, exact under redelivery, crashes, cleanup and
retention.

The storage is written only with inserts and deletes, never updated in place:
FerretDB v1 runs every update as a scan of its whole collection (0.2 s per update
on 20,000 documents, measured), while an insert or an ``_id`` read is cheap.

Documents in `log_rollups` (``c`` maps a count key to a count; a key is
``m<epoch>:<level>[:<service, percent-quoted>]`` for a minute and ``h<epoch>:…``
for an hour):

- *delta* ``{_id: "{tenant}:{day}:d:{token}", tenant_id, day, c}``: the events one
  worker batch newly stored (or, negative, one cleanup chunk deleted), split by UTC
  day. The ``_id`` is derived from the batch's token, so writing it again is a
  duplicate-key no-op: that is what makes the counting idempotent.
- *base* ``{_id: "{tenant}:{day}:b:{v}", …, v, absorbed: [delta ids]}``: a day's
  deltas merged by :func:`compact` (minutes older than ``minute_age`` become hours).
  Inserting version ``v+1`` is the compare-and-set: two compactions cannot both win.
  Readers take a day's newest base plus the deltas it did not absorb.

Documents in `log_rollup_pending` (small: only work in progress):

- *attempt* ``{_id: "{tenant}:i:{token}", tenant_id, at, minutes}``: written before a
  batch's ``insert_many``, deleted after its deltas. Every event the batch newly
  stores carries ``ra: token``, so the events a batch inserted are known even after
  a crash; an attempt older than the lease is a worker that died, and
  :func:`recover` counts its events (``ra``) into the same delta ids.
- *cleanup* ``{_id: "{tenant}:c:{token}", tenant_id, at, ids, c}``: written before a
  delete of the listed event ids, with their negative counts; after the delete
  the negative delta is written and the marker removed. A marker left by a crash
  is finished by :func:`recover` (delete the ids again, write the delta).
- *lock* ``{_id: "{tenant}:lock", at}``: one delete (cleanup, retention) per tenant
  at a time, so the deleted ids are exactly the ones counted.

Readers treat the minutes of a dead attempt or of a cleanup in progress as
*dirty* and count them from the events; everything else comes from the rollups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.core.errors import Conflict
from services.core.logfilters import LogFilter
from services.core.logmodel import LEVEL_NO, LOGS

log = logging.getLogger(__name__)

ROLLUPS = "log_rollups"
PENDING = "log_rollup_pending"
BACKFILL_ID = "~backfill"
DAY = 86400
DUPLICATE_KEY = 11000
DELETE_CHUNK = 50_000  # event ids per cleanup marker (~2.5 MB) and per delete_many
MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

ROLLUP_INDEXES = [
    # a tenant's days in a range (every read); ESR: tenant equality, then the range
    IndexModel([("tenant_id", ASCENDING), ("day", ASCENDING)], name="tenant_day"),
]
PENDING_INDEXES = [
    IndexModel([("tenant_id", ASCENDING)], name="tenant"),
    IndexModel([("at", ASCENDING)], name="at"),
]


def token() -> str:
    return uuid.uuid4().hex[:20]


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _epoch(dt: datetime) -> int:
    return int(_aware(dt).timestamp())


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def count_key(span: str, epoch: int, level: str, service: str | None) -> str:
    """``m<epoch>:<level>[:<service>]``; the service percent-quoted (a document key can
    hold no ``.`` nor start with ``$``), and absent (None) kept apart from ``""``."""
    base = f"{span}{epoch}:{level}"
    return base if service is None else f"{base}:{quote(service, safe='').replace('.', '%2E')}"


def parse_key(key: str) -> tuple[str, int, str, str | None]:
    head, _, rest = key.partition(":")
    level, sep, service = rest.partition(":")
    return head[0], int(head[1:]), level, (unquote(service) if sep else None)


def doc_key(doc: dict[str, Any]) -> str:
    """The minute count key of an event document."""
    return count_key("m", _epoch(doc["minute"]), doc["level"], doc.get("service"))


def _day_of(epoch: int) -> int:
    return epoch - epoch % DAY


def split_by_day(counts: Counter[str]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for key, n in counts.items():
        if n:
            out.setdefault(_day_of(parse_key(key)[1]), {})[key] = n
    return out


def delta_docs(tenant_id: str, tok: str, counts: Counter[str]) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"{tenant_id}:{day}:d:{tok}",
            "tenant_id": tenant_id,
            "day": _at(day),
            "c": c,
        }
        for day, c in split_by_day(counts).items()
    ]


async def _insert_ignoring_duplicates(coll: Any, docs: list[dict[str, Any]]) -> set[int]:
    """Insert; the indexes of documents that already existed."""
    if not docs:
        return set()
    try:
        await coll.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get(
            "writeConcernErrors"
        ):
            raise
        return {e["index"] for e in errors}
    return set()


async def _renew(db: AsyncDatabase, ids: list[str], lease: timedelta) -> None:
    """Keep markers (or a lock) fresh every third of the lease while their work runs."""
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        try:  # the pending collection is small: an update there is cheap on FerretDB too
            await db[PENDING].update_many(
                {"_id": {"$in": ids}}, {"$set": {"at": datetime.now(UTC)}}
            )
        except Exception as exc:
            log.warning("rollup marker renewal failed", extra={"error": str(exc)[:300]})


# --- writing (the worker) ----------------------------------------------------------------


@dataclass
class Attempt:
    """One worker batch: its token, and the minute keys of the events it newly stored."""

    token: str = field(default_factory=token)
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # tenant -> key -> n


class RollupWriter:
    """The worker's side: announce, insert (events tagged ``ra``), count.

    While a batch is in hand its markers are renewed every third of the lease, so
    only a worker that died (or froze for longer than the lease) leaves markers old
    enough for :func:`recover`.
    """

    def __init__(self, db: AsyncDatabase, lease: timedelta = timedelta(seconds=120)) -> None:
        self.db = db
        self.lease = lease

    @contextlib.asynccontextmanager
    async def attempt(self, docs: list[dict[str, Any]]) -> AsyncIterator[Attempt]:
        """:meth:`begin`, then keep the markers fresh until the block ends."""
        attempt = await self.begin(docs)
        ids = [f"{t}:i:{attempt.token}" for t in {d["tenant_id"] for d in docs}]
        beat = asyncio.create_task(_renew(self.db, ids, self.lease))
        try:
            yield attempt
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def begin(self, docs: list[dict[str, Any]]) -> Attempt:
        """Tag the documents with a new token and write the attempt markers."""
        attempt = Attempt()
        minutes: dict[str, set[int]] = {}
        for doc in docs:
            doc["ra"] = attempt.token
            minutes.setdefault(doc["tenant_id"], set()).add(_epoch(doc["minute"]))
        now = datetime.now(UTC)
        await self.db[PENDING].insert_many(
            [
                {
                    "_id": f"{t}:i:{attempt.token}",
                    "tenant_id": t,
                    "at": now,
                    "minutes": sorted(m),
                }
                for t, m in minutes.items()
            ],
            ordered=False,
        )
        return attempt

    async def finish(
        self, attempt: Attempt, docs: list[dict[str, Any]], new: Iterable[int]
    ) -> None:
        """Write the deltas of the newly stored documents, then drop the markers.

        If a recovery took this batch for dead (it froze for longer than the lease), it
        counted the batch's events it found stored then, left a receipt of those counts
        and removed the markers: only the difference is added then, under its own id.
        """
        for i in new:
            doc = docs[i]
            attempt.counts.setdefault(doc["tenant_id"], Counter())[doc_key(doc)] += 1
        tok = attempt.token
        markers = {t: f"{t}:i:{tok}" for t in {doc["tenant_id"] for doc in docs}}
        alive = {
            m["_id"]
            for m in await self.db[PENDING]
            .find({"_id": {"$in": list(markers.values())}}, {"_id": 1})
            .to_list()
        }
        deltas = [
            d
            for t, c in attempt.counts.items()
            if markers[t] in alive
            for d in delta_docs(t, tok, c)
        ]
        existed = await _insert_ignoring_duplicates(self.db[ROLLUPS], deltas)
        if existed:  # a recovery wrote them meanwhile: add what it could not see yet
            await self._top_up([deltas[i] for i in existed])
        for t, c in attempt.counts.items():
            if markers[t] not in alive:
                await self._after_recovery(t, tok, c)
        await self.db[PENDING].delete_many({"_id": {"$in": list(markers.values())}})

    async def _top_up(self, mine: list[dict[str, Any]]) -> None:
        fixes = []
        for d in mine:
            theirs = await self.db[ROLLUPS].find_one({"_id": d["_id"]}) or {"c": {}}
            diff = {k: n - theirs["c"].get(k, 0) for k, n in d["c"].items()}
            diff = {k: n for k, n in diff.items() if n > 0}
            if diff:
                fixes.append({**d, "_id": d["_id"] + "+", "c": diff})
        await _insert_ignoring_duplicates(self.db[ROLLUPS], fixes)
        log.warning("a batch outlived its rollup lease; recovered counts topped up")

    async def _after_recovery(self, tenant_id: str, tok: str, mine: Counter[str]) -> None:
        receipt = await self.db[PENDING].find_one({"_id": f"{tenant_id}:r:{tok}"})
        if receipt is None:
            log.error(
                "a batch outlived its rollup lease and its recovery receipt; its counts may "
                "be short",
                extra={"tenant": tenant_id},
            )
            return
        diff = Counter({k: n - receipt["c"].get(k, 0) for k, n in mine.items()})
        fixes = [{**d, "_id": d["_id"] + "+"} for d in delta_docs(tenant_id, tok, +diff)]
        await _insert_ignoring_duplicates(self.db[ROLLUPS], fixes)
        await self.db[PENDING].delete_one({"_id": receipt["_id"]})
        log.warning("a batch outlived its rollup lease; recovered counts topped up")


# --- reading ------------------------------------------------------------------------------


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


# --- deletes (cleanup, retention) -------------------------------------------------------


@contextlib.asynccontextmanager
async def tenant_lock(
    db: AsyncDatabase, tenant_id: str, lease: timedelta, wait: float = 0.0
) -> AsyncIterator[None]:
    """One delete per tenant at a time. Waits up to ``wait`` seconds for another one to
    end, then answers 409; a lock older than ``lease`` belongs to a dead process and
    is taken over."""
    lock_id = f"{tenant_id}:lock"
    deadline = asyncio.get_running_loop().time() + wait
    while not await _take_lock(db, lock_id, tenant_id, lease):
        if asyncio.get_running_loop().time() >= deadline:
            raise Conflict(
                "Another delete of this tenant's events (a cleanup, or the retention sweep) "
                "is running; try again when it is done."
            )
        await asyncio.sleep(0.2)
    beat = asyncio.create_task(_renew(db, [lock_id], lease))  # a long delete keeps its lock
    try:
        yield
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await db[PENDING].delete_one({"_id": lock_id})


async def _take_lock(db: AsyncDatabase, lock_id: str, tenant_id: str, lease: timedelta) -> bool:
    now = datetime.now(UTC)
    lock = {"_id": lock_id, "tenant_id": tenant_id, "at": now, "lock": 1}
    try:
        await db[PENDING].insert_one(lock)
        return True
    except DuplicateKeyError:
        held = await db[PENDING].find_one({"_id": lock_id})
        if held and _aware(held["at"]) >= now - lease:
            return False
    # the holder died: take over (a lock taken over twice at once is settled by the insert)
    await db[PENDING].delete_one({"_id": lock_id, "at": {"$lt": now - lease}})
    try:
        await db[PENDING].insert_one(lock)
        return True
    except DuplicateKeyError:
        return False


async def delete_counted(
    db: AsyncDatabase, query: dict[str, Any], max_time_ms: int | None = None
) -> int:
    """Delete the events matching ``query`` (any tenant(s)) and subtract them from the
    rollups exactly. Hold each tenant's :func:`tenant_lock` around it.

    The matching events are listed first (id, tenant, minute, level, service); then,
    per chunk: a cleanup marker with the ids and their negative counts, the delete
    of exactly those ids, the negative deltas, the marker removed. Events that begin
    to match after the listing are not deleted: the cleanup is of what matched when
    it started.
    """
    kwargs = {"max_time_ms": max_time_ms} if max_time_ms else {}
    cursor = db[LOGS].find(
        query, {"_id": 1, "tenant_id": 1, "minute": 1, "level": 1, "service": 1}, **kwargs
    )
    deleted = 0
    chunk: list[dict[str, Any]] = []
    async for doc in cursor:
        chunk.append(doc)
        if len(chunk) >= DELETE_CHUNK:
            deleted += await _delete_chunk(db, chunk)
            chunk = []
    if chunk:
        deleted += await _delete_chunk(db, chunk)
    return deleted


async def _delete_chunk(db: AsyncDatabase, docs: list[dict[str, Any]]) -> int:
    tok = token()
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_tenant.setdefault(d["tenant_id"], []).append(d)
    markers = []
    for t, ds in by_tenant.items():
        neg: Counter[str] = Counter()
        for d in ds:
            if d.get("minute") is not None and d.get("level") is not None:
                neg[doc_key(d)] -= 1  # (a document without them was never counted)
        markers.append(
            {
                "_id": f"{t}:c:{tok}",
                "tenant_id": t,
                "at": datetime.now(UTC),
                "ids": [d["_id"] for d in ds],
                "c": dict(neg),
            }
        )
    await db[PENDING].insert_many(markers, ordered=False)
    return await _finish_cleanup(db, markers)


async def _finish_cleanup(db: AsyncDatabase, markers: list[dict[str, Any]]) -> int:
    ids = [i for m in markers for i in m["ids"]]
    result = await db[LOGS].delete_many({"_id": {"$in": ids}})
    deltas = [
        d
        for m in markers
        for d in delta_docs(m["tenant_id"], m["_id"].rsplit(":", 1)[1], Counter(m["c"]))
    ]
    await _insert_ignoring_duplicates(db[ROLLUPS], deltas)
    await db[PENDING].delete_many({"_id": {"$in": [m["_id"] for m in markers]}})
    return result.deleted_count


# --- recovery, compaction, backfill (the worker) ----------------------------------------------


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
