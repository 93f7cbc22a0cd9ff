"""Which log indexes a storage gets, and proof that every query the repository can build
has a MongoDB index serving it by the equality-sort-range rule (no mongod needed)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import IndexModel

from services.core.errors import NotFound
from services.core.logs import ring
from services.core.logs.filters import EXACT_FIELDS, LogFilter, parse_params
from services.core.logs.model import LOGS
from services.core.logs.repository import INDEXED_FILTERS, LOG_INDEXES, log_indexes_for
from services.core.logs.rollups import (
    PENDING,
    PENDING_INDEXES,
    ROLLUP_INDEXES,
    ROLLUPS,
    day_query,
    ranges_query,
)
from services.log.repository import LogRepository, encode_cursor

MONGODB = {"version": "7.0.14"}


def test_ferretdb_v1_gets_no_secondary_log_indexes() -> None:
    assert log_indexes_for({"version": "7.0.42", "ferretdbVersion": "v1.24.2"}) == []


def test_mongodb_and_later_ferretdb_get_every_index() -> None:
    assert log_indexes_for({"version": "7.0.14"}) == LOG_INDEXES
    assert log_indexes_for({"version": "7.0.42", "ferretdbVersion": "v2.1.0"}) == LOG_INDEXES


def test_every_exact_filter_has_its_index() -> None:
    assert set(EXACT_FIELDS) | {"level"} <= set(INDEXED_FILTERS)


# --- capturing every query ---------------------------------------------------------------


class Cursor:
    def __init__(self, log: list[tuple[str, str, Any, Any]], coll: str, query: Any) -> None:
        self.log, self.coll, self.query = log, coll, query
        self.order: list[tuple[str, int]] | None = None

    def sort(self, order: list[tuple[str, int]]) -> Cursor:
        self.order = order
        return self

    def skip(self, _: int) -> Cursor:
        return self

    def limit(self, _: int) -> Cursor:
        return self

    def batch_size(self, _: int) -> Cursor:
        return self

    async def to_list(self) -> list[dict[str, Any]]:
        self.log.append(("find", self.coll, self.query, self.order))
        return []

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_: Any) -> None:
        return None

    def __aiter__(self) -> Cursor:
        self.log.append(("find", self.coll, self.query, self.order))
        return self

    async def __anext__(self) -> dict[str, Any]:
        raise StopAsyncIteration


class Agg:
    async def to_list(self) -> list[dict[str, Any]]:
        return []


class Collection:
    def __init__(self, log: list[tuple[str, str, Any, Any]], name: str) -> None:
        self.log, self.name = log, name

    def find(self, query: dict[str, Any], *_: Any, **__: Any) -> Cursor:
        return Cursor(self.log, self.name, query)

    async def find_one(self, query: dict[str, Any], *_: Any, **__: Any) -> dict[str, Any] | None:
        self.log.append(("find", self.name, query, None))
        return {"_id": query["_id"], "done": True} if self.name == PENDING else None

    async def count_documents(self, query: dict[str, Any], **_: Any) -> int:
        self.log.append(("count", self.name, query, None))
        return 0

    async def aggregate(self, pipeline: list[dict[str, Any]], **_: Any) -> Agg:
        self.log.append(("aggregate", self.name, pipeline[0]["$match"], None))
        return Agg()


class Db(dict):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str, Any, Any]] = []
        for name in (LOGS, ROLLUPS, PENDING):
            self[name] = Collection(self.log, name)


# --- the equality-sort-range rule -------------------------------------------------------

RANGE_OPS = {"$gt", "$gte", "$lt", "$lte", "$regex", "$options", "$nin", "$ne", "$exists"}


def branches(query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The conjunctions a query is made of ($and flattened, $or expanded)."""
    base = {k: v for k, v in query.items() if k not in ("$and", "$or")}
    parts: list[list[dict[str, Any]]] = [[base]]
    for sub in query.get("$and", []):
        parts.append(list(branches(sub)))
    if "$or" in query:
        parts.append([b for clause in query["$or"] for b in branches(clause)])
    for combo in itertools.product(*parts):
        merged: dict[str, Any] = {}
        for c in combo:
            merged.update(c)
        yield merged


def equality_fields(branch: dict[str, Any]) -> set[str]:
    out = set()
    for name, value in branch.items():
        if not isinstance(value, dict) or set(value) == {"$in"}:
            out.add(name)
    return out


def serves(index: IndexModel, branch: dict[str, Any], order: list[tuple[str, int]] | None) -> bool:
    keys = list(index.document["key"].items())
    eq = equality_fields(branch)
    if not keys or keys[0][0] not in eq:
        return False
    j = 1
    while j < len(keys) and keys[j][0] in eq:
        j += 1
    if eq & set(INDEXED_FILTERS) and j == 1 and index.document["name"] != "tenant_id_uniq":
        return False  # the query has a selective equality this index does not use
    # a sort key bound by equality in the prefix (a keyset cursor's tie) is already sorted
    order = [(k, d) for k, d in order or [] if k not in {key for key, _ in keys[:j]}]
    if order:
        window = keys[j : j + len(order)]
        if [k for k, _ in window] != [k for k, _ in order]:
            return False
        same = all(d == o for (_, d), (_, o) in zip(window, order, strict=True))
        flipped = all(d == -o for (_, d), (_, o) in zip(window, order, strict=True))
        return same or flipped
    ranged = {k for k, v in branch.items() if isinstance(v, dict) and set(v) & RANGE_OPS}
    # a range right after the equalities, or no range at all
    return not ranged or (j < len(keys) and keys[j][0] in ranged) or "timestamp" not in ranged


def unserved(
    queries: list[tuple[str, str, Any, Any]], indexes: dict[str, list[IndexModel]]
) -> list[str]:
    bad = []
    for op, coll, query, order in queries:
        for branch in branches(query):
            if set(branch) == {"_id"} or (coll == LOGS and "_id" in equality_fields(branch)):
                continue  # the _id index
            if not any(serves(ix, branch, order) for ix in indexes[coll]):
                bad.append(f"{op} {coll} {branch} sort={order}")
    return bad


# --- every filter the API accepts, alone and in pairs -----------------------------------

NOW = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
SINGLE = [
    [("level", "error")],
    [("level", "error,warning")],
    [("min_level", "warning")],
    *([(name, "x")] for name in EXACT_FIELDS),
    [("q", "boom")],
    [("user_agent", "curl")],
    [("from", "2026-05-01T00:00:00.5Z")],
    [("to", "2026-05-02T00:00:00Z")],
    [("timestamp", "2026-05-01")],
    [("attributes.stage", "build")],
]


def filters() -> Iterator[LogFilter]:
    yield LogFilter()
    for a in SINGLE:
        yield parse_params(a, frozenset()).filter
    for a, b in itertools.combinations(SINGLE, 2):
        if a[0][0] in ("from", "to", "timestamp") and b[0][0] in ("from", "to", "timestamp"):
            continue
        yield parse_params(a + b, frozenset()).filter


async def every_query() -> list[tuple[str, str, Any, Any]]:
    db = Db()
    repo = LogRepository(db, count_limit=10)  # type: ignore[arg-type]
    doc = {"timestamp": NOW, "id": "e1"}
    for flt in filters():
        for descending in (True, False):
            cursor = encode_cursor(doc, descending)
            await repo.search("acme", flt, descending=descending, with_total=True)
            await repo.search("acme", flt, descending=descending, cursor=cursor)
            await repo.search("acme", flt, descending=descending, page=3)
            async for _ in repo.stream("acme", flt, descending=descending, limit=None):
                pass
        for by in ("level", "service", "action"):
            await repo.stats("acme", flt, by=by, interval="1h")
        await ring.from_storage(db, "acme", flt, 10)  # type: ignore[arg-type]
        below = {"$or": [{"timestamp": {"$lt": NOW}}, {"timestamp": NOW, "id": {"$nin": ["a"]}}]}
        await ring.from_storage(db, "acme", flt, 10, below=below)  # type: ignore[arg-type]
        # what rollup reads count from the events: edges and dirty minutes
        edges = [
            (NOW, NOW + timedelta(minutes=1)),
            (NOW + timedelta(hours=2), NOW + timedelta(hours=3)),
        ]
        await db[LOGS].aggregate([{"$match": ranges_query(flt.to_mongo("acme"), edges)}])
        await db[ROLLUPS].find(day_query("acme", flt)).to_list()
    with contextlib.suppress(NotFound):
        await repo.get("acme", "e1")
    return db.log


async def test_every_query_the_repository_builds_has_an_index_on_mongodb() -> None:
    queries = await every_query()
    assert len(queries) > 1000  # the enumeration really ran
    indexes = {
        LOGS: log_indexes_for(MONGODB),
        ROLLUPS: ROLLUP_INDEXES,
        PENDING: PENDING_INDEXES,
    }
    assert unserved(queries, indexes) == []


@pytest.mark.parametrize("dropped", [ix.document["name"] for ix in LOG_INDEXES[2:]])
async def test_the_proof_notices_a_missing_index(dropped: str) -> None:
    queries = await every_query()
    fewer = [ix for ix in log_indexes_for(MONGODB) if ix.document["name"] != dropped]
    assert unserved(queries, {LOGS: fewer, ROLLUPS: ROLLUP_INDEXES, PENDING: PENDING_INDEXES})
