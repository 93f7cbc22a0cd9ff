"""Counted deletes (cleanup, retention): one per tenant at a time, every deleted event uncounted."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.core.errors import Conflict
from services.core.logs.model import LOGS
from services.core.logs.rollups.storage import (
    DELETE_CHUNK,
    PENDING,
    ROLLUPS,
    _aware,
    _insert_ignoring_duplicates,
    _renew,
    delta_docs,
    doc_key,
    token,
)


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
