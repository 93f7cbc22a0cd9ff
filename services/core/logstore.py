"""The `logs` collection: its indexes and the reads more than one service needs."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.core.logfilters import LogFilter
from services.core.logmodel import LOGS, document_to_api

log = logging.getLogger(__name__)

# One index per filter path, each led by tenant_id (every query starts from it) and
# ending in the sort key so that a filtered, time-sorted page is an index walk.
LOG_INDEXES = [
    IndexModel([("tenant_id", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id_uniq"),
    IndexModel(
        [("tenant_id", ASCENDING), ("timestamp", DESCENDING), ("id", DESCENDING)],
        name="tenant_time",
    ),
    IndexModel(
        [("tenant_id", ASCENDING), ("level", ASCENDING), ("timestamp", DESCENDING)],
        name="tenant_level_time",
    ),
    IndexModel(
        [("tenant_id", ASCENDING), ("service", ASCENDING), ("timestamp", DESCENDING)],
        name="tenant_service_time",
    ),
    IndexModel(
        [
            ("tenant_id", ASCENDING),
            ("action", ASCENDING),
            ("resource_type", ASCENDING),
            ("resource_id", ASCENDING),
            ("timestamp", DESCENDING),
        ],
        name="tenant_action_resource_time",
    ),
    IndexModel(
        [("tenant_id", ASCENDING), ("trace_id", ASCENDING), ("timestamp", DESCENDING)],
        name="tenant_trace_time",
    ),
    IndexModel(
        [("tenant_id", ASCENDING), ("user_id", ASCENDING), ("timestamp", DESCENDING)],
        name="tenant_user_time",
    ),
]


async def ensure_indexes(collection: AsyncCollection, models: list[IndexModel]) -> None:
    """Create only the indexes that are missing.

    Asking for existing indexes again would be a no-op on MongoDB, but FerretDB
    v1 can panic on `createIndexes` for a collection whose indexes were once
    created by two clients at the same moment, so we look before we create.
    """
    existing = await collection.index_information()
    missing = [m for m in models if m.document["name"] not in existing]
    if missing:
        await collection.create_indexes(missing)


def log_indexes_for(build_info: dict[str, Any]) -> list[IndexModel]:
    """The indexes worth having on this storage (from its ``buildInfo``).

    FerretDB v1 pushes only ``_id`` equality down to SQLite and filters and sorts
    everything else in Go (docs/architecture.md#backends), so secondary indexes never serve a query
    there; they only cost writes (inserts took 60 % more of FerretDB's CPU with
    them: 175 vs 110 us a document). Idempotency does not need them either: it
    comes from ``_id`` = ``{tenant}:{id}``.
    """
    if str(build_info.get("ferretdbVersion", "")).startswith("v1."):
        return []
    return LOG_INDEXES


async def ensure_log_indexes(db: AsyncDatabase) -> None:
    """Run by the worker only (the writer), so replicas of other services never race it."""
    models = log_indexes_for(await db.client.admin.command("buildInfo"))
    if not models:
        log.info("this storage answers log queries without secondary indexes; none created")
        return
    await ensure_indexes(db[LOGS], models)


async def recent_events(
    db: AsyncDatabase, tenant_id: str, flt: LogFilter, n: int
) -> list[dict[str, Any]]:
    """The last ``n`` matching events, oldest first (for a live tail's replay)."""
    cursor = (
        db[LOGS]
        .find(flt.to_mongo(tenant_id))
        .sort([("timestamp", DESCENDING), ("id", DESCENDING)])
        .limit(n)
    )
    docs = await cursor.to_list()
    return [document_to_api(d) for d in reversed(docs)]
