"""Rollup storage: the two collections, their indexes, count keys and delta documents."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

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
