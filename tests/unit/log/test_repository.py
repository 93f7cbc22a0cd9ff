"""Cursor encoding for keyset pagination."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest

from services.core.errors import NotFound, ValidationFailed
from services.log.repository import LogRepository, decode_cursor, encode_cursor, roll_up


def raw_cursor(value) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


@pytest.mark.parametrize("descending", [True, False])
def test_round_trip(descending):
    ts = datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)
    cursor = encode_cursor({"timestamp": ts, "id": "evt/+=?é"}, descending)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # URL-safe
    assert decode_cursor(cursor, descending) == (ts, "evt/+=?é")


def test_round_trip_drops_sub_millisecond():
    ts = datetime(2026, 1, 31, 12, 0, 0, 123999, tzinfo=UTC)
    got, _ = decode_cursor(encode_cursor({"timestamp": ts, "id": "x"}, True), True)
    assert got == ts.replace(microsecond=123000)
    assert got.tzinfo is not None


@pytest.mark.parametrize("descending", [True, False])
def test_wrong_direction_rejected(descending):
    cursor = encode_cursor({"timestamp": datetime(2026, 1, 1, tzinfo=UTC), "id": "x"}, descending)
    with pytest.raises(ValidationFailed) as info:
        decode_cursor(cursor, not descending)
    assert info.value.errors == [
        {"field": "cursor", "message": "belongs to a different sort order"}
    ]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!!",
        "%%%%",
        raw_cursor({"a": 1}),
        raw_cursor([1, "x"]),
        raw_cursor([1, "x", "d", 4]),
        raw_cursor(["soon", "x", "d"]),
        raw_cursor([1, 2, "d"]),
        raw_cursor("string"),
        base64.urlsafe_b64encode(b"\xff\xfe[1]").decode(),
    ],
)
def test_garbage_rejected(cursor):
    with pytest.raises(ValidationFailed) as info:
        decode_cursor(cursor, True)
    assert info.value.errors[0]["field"] == "cursor"
    assert info.value.status == 422


@pytest.mark.parametrize("ms", [1e300, 1e20])
def test_out_of_range_time_rejected(ms):
    with pytest.raises(ValidationFailed):
        decode_cursor(raw_cursor([ms, "x", "d"]), True)


# --- get by id ---------------------------------------------------------------------------


class OneDoc:
    """A `logs` collection holding one stored event; records the filters it is asked."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.filters: list[dict] = []

    async def find_one(self, flt: dict) -> dict | None:
        self.filters.append(flt)
        return self.doc if all(self.doc.get(k) == v for k, v in flt.items()) else None


STORED = {
    "_id": "acme:e1",
    "id": "e1",
    "tenant_id": "acme",
    "timestamp": datetime(2026, 1, 31, tzinfo=UTC),
    "level": "INFO",
    "message": "m",
}


async def test_get_asks_for_the_id_alone():
    """FerretDB v1 pushes a filter down to SQLite only when `_id` is its only key (with
    `tenant_id` beside it, it read the whole collection: 17 s on 100,000 events); the
    `_id` holds the tenant already."""
    logs = OneDoc(STORED)
    got = await LogRepository({"logs": logs}).get("acme", "e1")  # type: ignore[arg-type]
    assert got["id"] == "e1" and got["tenant_id"] == "acme"
    assert logs.filters == [{"_id": "acme:e1"}]


async def test_get_never_returns_another_tenants_event():
    """Defence in depth: were an `_id` ever to collide across tenants, the tenant field
    of the stored event still decides."""
    logs = OneDoc({**STORED, "tenant_id": "other"})
    with pytest.raises(NotFound):
        await LogRepository({"logs": logs}).get("acme", "e1")  # type: ignore[arg-type]


def test_roll_up_counts_per_value_and_stacks_each_bucket() -> None:
    def group(minute: str | None, key: str | None, count: int) -> dict:
        gid: dict = {}
        if minute:
            gid["m"] = datetime.fromisoformat(minute).replace(tzinfo=UTC)
        if key:
            gid["k"] = key
        return {"_id": gid, "count": count}

    groups = [
        group("2026-03-01T10:01:00", "ERROR", 2),
        group("2026-03-01T10:59:00", "INFO", 3),
        group("2026-03-01T10:30:00", "ERROR", 1),
        group("2026-03-01T12:00:00", None, 4),  # no level: "(none)"
        group(None, "DEBUG", 5),  # no minute: counted, not in the histogram
    ]
    counts, histogram = roll_up(groups, 3600)
    assert counts == {"ERROR": 3, "INFO": 3, "(none)": 4, "DEBUG": 5}
    assert histogram == [
        {
            "start": datetime(2026, 3, 1, 10, tzinfo=UTC),
            "count": 6,
            "counts": {"ERROR": 3, "INFO": 3},
        },
        {"start": datetime(2026, 3, 1, 12, tzinfo=UTC), "count": 4, "counts": {"(none)": 4}},
    ]
