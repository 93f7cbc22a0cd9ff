"""The three shapes of an event: wire ↔ document ↔ API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.core.logs.model import (
    API_FIELDS,
    LEVEL_NO,
    LEVELS,
    doc_id,
    document_to_api,
    iso,
    parse_iso,
    parse_level,
    wire_to_document,
)

WIRE = {
    "id": "evt-1",
    "timestamp": "2026-01-31T12:34:56.789Z",
    "received_at": "2026-01-31T12:35:00.001Z",
    "level": "WARNING",
    "message": "disk almost full",
    "service": "api",
    "host": "web-1",
    "user_id": "u-1",
    "before": {"a": 1},
    "after": {"a": 2},
    "metadata": {"k": [1, {"x": None}]},
    "attributes": {"stage": "prod", "n": 3},
}


def test_wire_to_document():
    doc = wire_to_document("acme", WIRE)
    assert doc["_id"] == "acme:evt-1" == doc_id("acme", "evt-1")
    assert doc["tenant_id"] == "acme"
    assert doc["timestamp"] == datetime(2026, 1, 31, 12, 34, 56, 789000, tzinfo=UTC)
    assert doc["received_at"] == datetime(2026, 1, 31, 12, 35, 0, 1000, tzinfo=UTC)
    assert doc["level_no"] == 30
    assert doc["minute"] == datetime(2026, 1, 31, 12, 34, tzinfo=UTC)
    assert doc["attributes"] == {"stage": "prod", "n": 3}
    assert WIRE["timestamp"] == "2026-01-31T12:34:56.789Z"  # input not mutated


def test_wire_to_document_converts_offsets_to_utc():
    doc = wire_to_document("t", {**WIRE, "timestamp": "2026-01-31T23:59:30.5+05:00"})
    assert doc["timestamp"] == datetime(2026, 1, 31, 18, 59, 30, 500000, tzinfo=UTC)
    assert doc["timestamp"].utcoffset() == timedelta(0)
    assert doc["minute"] == datetime(2026, 1, 31, 18, 59, tzinfo=UTC)


@pytest.mark.parametrize("level", LEVELS)
def test_level_no_for_every_level(level):
    doc = wire_to_document("t", {**WIRE, "level": level})
    assert doc["level_no"] == LEVEL_NO[level]


def test_level_numbers_are_ordered():
    assert [LEVEL_NO[lv] for lv in LEVELS] == sorted(LEVEL_NO.values())


def test_unknown_level_is_an_error():
    with pytest.raises(KeyError):
        wire_to_document("t", {**WIRE, "level": "warn"})


def test_round_trip_to_api_adds_tenant():
    api = document_to_api(wire_to_document("acme", WIRE))
    assert api == {**WIRE, "tenant_id": "acme"}
    for internal in ("_id", "level_no", "minute"):
        assert internal not in api


def test_round_trip_minimal_event():
    wire = {
        "id": "x",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "received_at": "2026-01-01T00:00:01.000Z",
        "level": "INFO",
        "action": "user.login",
    }
    assert document_to_api(wire_to_document("t", wire)) == {**wire, "tenant_id": "t"}


def test_document_to_api_orders_and_filters_fields():
    doc = wire_to_document("acme", WIRE)
    doc["unexpected"] = 1
    doc["host"] = None
    api = document_to_api(doc)
    assert "unexpected" not in api and "host" not in api
    assert list(api) == [f for f in API_FIELDS if f in api]


def test_iso():
    assert iso(datetime(2026, 1, 31, 12, 0, tzinfo=UTC)) == "2026-01-31T12:00:00.000Z"
    assert iso(datetime(2026, 1, 31, 12, 0, 0, 123999, tzinfo=UTC)) == "2026-01-31T12:00:00.123Z"
    tz = timezone(timedelta(hours=-5))
    assert iso(datetime(2026, 1, 31, 21, 0, tzinfo=tz)) == "2026-02-01T02:00:00.000Z"


def test_parse_iso():
    assert parse_iso("2026-01-31T12:00:00Z") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_iso("2026-01-31T12:00:00") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    got = parse_iso("2026-01-31T14:00:00.250+02:00")
    assert got == datetime(2026, 1, 31, 12, 0, 0, 250000, tzinfo=UTC)
    assert got.tzinfo == UTC
    with pytest.raises(ValueError):
        parse_iso("31/01/2026")


def test_iso_parse_iso_round_trip():
    text = "2026-06-15T08:09:10.011Z"
    assert iso(parse_iso(text)) == text


def test_parse_level():
    assert parse_level(" Warn ") == "WARNING"
    assert parse_level("fatal") == "CRITICAL"
    assert parse_level("verbose") is None


def test_dotted_keys_are_stored_with_a_substitute_and_read_back_as_written():
    wire = {
        **WIRE,
        "attributes": {"http.request.method": "GET", "k8s": {"pod.name": "p-1"}, "plain": 1},
        "metadata": {"list": [{"a.b": 1}, 2]},
    }
    doc = wire_to_document("acme", wire)
    assert doc["attributes"] == {
        "http\uff0erequest\uff0emethod": "GET",
        "k8s": {"pod\uff0ename": "p-1"},
        "plain": 1,
    }
    assert doc["metadata"] == {"list": [{"a\uff0eb": 1}, 2]}
    assert not any("." in key for key in doc["attributes"])  # MongoDB would read a path
    assert wire["attributes"]["http.request.method"] == "GET"  # input not mutated
    back = document_to_api(doc)
    assert back["attributes"] == wire["attributes"]
    assert back["metadata"] == wire["metadata"]


def test_objects_without_dotted_keys_are_not_copied():
    doc = wire_to_document("acme", WIRE)
    assert doc["attributes"] is WIRE["attributes"]
    assert doc["metadata"] is WIRE["metadata"]


@pytest.mark.parametrize(("text", "level"), [("emerg", "CRITICAL"), ("informational", "INFO")])
def test_syslog_severity_keywords(text, level):
    assert parse_level(text) == level
