"""The indexes of the `logs` and `log_rollups` collections, and who gets them."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.core.logs.filters import EXACT_FIELDS
from services.core.logs.model import LOGS
from services.core.logs.rollups import PENDING, PENDING_INDEXES, ROLLUP_INDEXES, ROLLUPS

log = logging.getLogger(__name__)

# Each index leads with tenant_id (every query starts from it) and follows the
# equality-sort-range rule: equality fields, then the sort key (timestamp, id), so a
# filtered, time-sorted page is an index walk with no in-memory sort; the time range
# of a filter is a range on the sort key. One index per exact filter field, so any
# single exact filter walks only its matches; combined filters use one of them and
# filter the rest. tests/unit/core/logs/test_repository.py proves every query the
# repository builds has its index here.
INDEXED_FILTERS = ("level", *EXACT_FIELDS)
LOG_INDEXES = [
    IndexModel([("tenant_id", ASCENDING), ("id", ASCENDING)], unique=True, name="tenant_id_uniq"),
    IndexModel(
        [("tenant_id", ASCENDING), ("timestamp", DESCENDING), ("id", DESCENDING)],
        name="tenant_time",
    ),
    *(
        IndexModel(
            [
                ("tenant_id", ASCENDING),
                (name, ASCENDING),
                ("timestamp", DESCENDING),
                ("id", DESCENDING),
            ],
            name=f"tenant_{name}_time",
        )
        for name in INDEXED_FILTERS
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
    await ensure_indexes(db[ROLLUPS], ROLLUP_INDEXES)
    await ensure_indexes(db[PENDING], PENDING_INDEXES)
