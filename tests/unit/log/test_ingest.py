"""parse_bulk, normalize_all and check_event_sizes (no request, no batcher)."""

from __future__ import annotations

import orjson
import pytest

from services.core.errors import PayloadTooLarge, ValidationFailed
from services.log.events import MAX_EVENT_BYTES, TimeWindow
from services.log.ingest import (
    MAX_REPORTED_ERRORS,
    Refused,
    check_duplicate_keys,
    check_event_sizes,
    ingest_records,
    is_ndjson,
    normalize_all,
    parse_bulk,
)

RECEIVED = "2026-02-01T08:00:00.000Z"


# --- parse_bulk -------------------------------------------------------------------------


def test_json_array():
    body = b'  \n[{"message": "a"}, {"message": "b"}]'
    assert parse_bulk(body, "application/json") == [{"message": "a"}, {"message": "b"}]


def test_array_detected_by_content_without_content_type():
    assert parse_bulk(b'[{"message": "a"}]', "") == [{"message": "a"}]


def test_ndjson_with_blank_lines_and_crlf():
    body = b'{"message": "a"}\r\n\r\n   \n{"message": "b"}\n\n'
    assert parse_bulk(body, "application/x-ndjson") == [{"message": "a"}, {"message": "b"}]


def test_ndjson_detected_by_content():
    body = b'{"message": "a"}\n{"message": "b"}'
    assert parse_bulk(body, "application/json") == [{"message": "a"}, {"message": "b"}]


def test_ndjson_content_type_wins_over_leading_bracket():
    # each line is its own JSON value; the arrays are left for normalize to reject
    body = b'[{"message": "a"}]\n[{"message": "b"}]'
    assert parse_bulk(body, "application/x-ndjson") == [[{"message": "a"}], [{"message": "b"}]]


def test_empty_body_is_no_events():
    assert parse_bulk(b"", "application/x-ndjson") == []
    assert parse_bulk(b"\n\n", "application/json") == []


def test_array_that_is_not_valid_json():
    with pytest.raises(ValidationFailed) as info:
        parse_bulk(b'[{"message": "a"},', "application/json")
    assert info.value.status == 422
    assert info.value.errors[0]["field"] == "body"


def test_bad_ndjson_line_is_named():
    body = b'{"message": "a"}\n\n{"message": \n{"message": "c"}'
    with pytest.raises(ValidationFailed) as info:
        parse_bulk(body, "application/x-ndjson")
    assert "Line 3" in info.value.detail


def test_oversize_ndjson_line_is_413():
    big = orjson.dumps({"message": "x" * MAX_EVENT_BYTES})
    body = b'{"message": "a"}\n' + big + b"\n"
    with pytest.raises(PayloadTooLarge) as info:
        parse_bulk(body, "application/x-ndjson")
    assert info.value.status == 413
    assert "line 2" in info.value.detail
    assert "Event 1" in info.value.detail


def test_line_at_the_limit_is_accepted():
    pad = MAX_EVENT_BYTES - len(orjson.dumps({"message": ""}))
    line = orjson.dumps({"message": "x" * pad})
    assert len(line) == MAX_EVENT_BYTES
    assert len(parse_bulk(line + b"\n", "application/x-ndjson")) == 1


# --- normalize_all --------------------------------------------------------------------


def test_normalize_all_ok():
    out = normalize_all([{"msg": "a"}, {"action": "x", "severity": "warn"}], RECEIVED)
    assert [e.get("message") for e in out] == ["a", None]
    assert out[1]["level"] == "WARNING"
    assert all(e["received_at"] == RECEIVED for e in out)


def test_normalize_all_is_all_or_nothing_with_index_and_field():
    raw = [{"message": "ok"}, {"level": "nope", "message": "m"}, {"message": "ok"}, {"id": ""}]
    with pytest.raises(ValidationFailed) as info:
        normalize_all(raw, RECEIVED)
    errors = info.value.errors
    assert [(e["index"], e["field"]) for e in errors] == [(1, "level"), (3, "id")]
    assert all(e["message"] for e in errors)
    assert "2 event(s) invalid" in info.value.detail
    assert "event 1, level" in info.value.detail


def test_normalize_all_reports_non_objects():
    with pytest.raises(ValidationFailed) as info:
        normalize_all([{"message": "ok"}, 5], RECEIVED)
    assert info.value.errors == [
        {"index": 1, "field": "event", "message": "each event must be a JSON object"}
    ]


def test_normalize_all_caps_reported_errors():
    raw = [{"level": "bad"} for _ in range(MAX_REPORTED_ERRORS + 50)]
    with pytest.raises(ValidationFailed) as info:
        normalize_all(raw, RECEIVED)
    errors = info.value.errors
    assert len(errors) == MAX_REPORTED_ERRORS == 100
    assert [e["index"] for e in errors] == list(range(100))


# --- check_event_sizes --------------------------------------------------------------------


def test_small_body_skips_the_check():
    """A body no larger than one event may be cannot hold an oversize event: nothing is encoded.

    The event below would be refused if it were measured, so passing proves the shortcut.
    """
    big = {"message": "x" * MAX_EVENT_BYTES}
    check_event_sizes([big], MAX_EVENT_BYTES)
    with pytest.raises(PayloadTooLarge):
        check_event_sizes([big], MAX_EVENT_BYTES + 1)


def test_oversize_event_in_a_large_body():
    small = {"message": "a"}
    big = {"message": "x" * MAX_EVENT_BYTES}
    body_size = len(orjson.dumps([small, big]))
    with pytest.raises(PayloadTooLarge) as info:
        check_event_sizes([small, big, small], body_size)
    assert info.value.errors == [{"index": 1, "field": "event", "message": "too large"}]
    assert "Event 1" in info.value.detail


def test_many_small_events_in_a_large_body_pass():
    events = [{"message": "y" * 1000} for _ in range(400)]
    body_size = len(orjson.dumps(events))
    assert body_size > MAX_EVENT_BYTES
    check_event_sizes(events, body_size)


# --- ingest_records: per record, for the shipper protocols ------------------------------


class RecordingBatcher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict]]] = []

    async def submit(self, tenant_id: str, events: list[bytes]) -> None:
        self.calls.append((tenant_id, [orjson.loads(e) for e in events]))


async def test_ingest_records_queues_the_valid_and_refuses_the_rest():
    batcher = RecordingBatcher()
    raws = [
        {"message": "ok", "id": "a"},
        {"message": "x", "level": "loud"},
        Refused("refused while decoding"),
        {"message": "big", "attributes": {"blob": "x" * MAX_EVENT_BYTES}},
        {"message": "ok too"},
    ]
    out = await ingest_records(batcher, "acme", raws, RECEIVED)  # type: ignore[arg-type]
    assert out[0] == "a" and isinstance(out[4], str)
    assert isinstance(out[1], Refused) and out[1].reason.startswith("level:")
    assert out[2] == Refused("refused while decoding")
    assert isinstance(out[3], Refused) and "bytes" in out[3].reason
    [(tenant, events)] = batcher.calls  # one submit, the valid ones only
    assert tenant == "acme" and [e["message"] for e in events] == ["ok", "ok too"]


async def test_ingest_records_with_nothing_valid_queues_nothing():
    batcher = RecordingBatcher()
    out = await ingest_records(batcher, "acme", [{"level": "x"}], RECEIVED)  # type: ignore[arg-type]
    assert isinstance(out[0], Refused) and batcher.calls == []


async def test_ingest_records_refuses_records_older_than_the_retention():
    batcher = RecordingBatcher()
    raws = [
        {"message": "old", "timestamp": "2026-01-01T00:00:00Z"},
        {"message": "recent", "timestamp": "2026-01-31T00:00:00Z"},
    ]
    out = await ingest_records(batcher, "acme", raws, RECEIVED, retention_days=7)  # type: ignore[arg-type]
    assert isinstance(out[0], Refused) and "retention of 7 days" in out[0].reason
    assert isinstance(out[1], str)  # a day before RECEIVED: inside the 7 days
    [(_, events)] = batcher.calls
    assert [e["message"] for e in events] == ["recent"]


async def test_ingest_records_over_the_count_is_413():
    with pytest.raises(PayloadTooLarge):
        await ingest_records(RecordingBatcher(), "t", [{"message": "m"}] * 10_001, RECEIVED)  # type: ignore[arg-type]


# --- the tenant's retention and duplicate keys ------------------------------------------


def test_one_event_older_than_the_retention_refuses_the_batch():
    raw = [{"message": "ok"}, {"message": "ok"}, {"message": "ok"}]
    raw.append({"message": "old", "timestamp": "2025-01-01T00:00:00Z"})
    with pytest.raises(ValidationFailed) as info:
        normalize_all(raw, RECEIVED, TimeWindow(RECEIVED, 30))
    assert info.value.errors == [
        {
            "index": 3,
            "field": "timestamp",
            "message": "2025-01-01T00:00:00.000Z is older than this tenant's retention of 30 "
            "days (events before 2026-01-02T08:00:00.000Z are deleted); it would be deleted "
            "at once",
        }
    ]
    assert info.value.detail.startswith(
        "1 event(s) invalid, nothing was accepted; first: event 3, timestamp: "
        "2025-01-01T00:00:00.000Z is older than this tenant's retention of 30 days"
    )


def test_duplicate_keys_refuse_the_batch_with_index_and_path():
    body = b'[{"message":"ok"},{"message":"a","attributes":{"x":1,"x":2}}]'
    with pytest.raises(ValidationFailed) as info:
        check_duplicate_keys(body, parse_bulk(body, "application/json"), lines=False)
    assert [(e["index"], e["field"]) for e in info.value.errors] == [(1, "attributes.x")]
    assert "event 1, attributes.x: the key 'x' appears more than once" in info.value.detail


def test_duplicate_keys_in_ndjson():
    body = b'{"message":"ok"}\n{"message":"a","message":"b"}\n'
    with pytest.raises(ValidationFailed) as info:
        check_duplicate_keys(body, parse_bulk(body, "application/x-ndjson"), lines=True)
    assert [(e["index"], e["field"]) for e in info.value.errors] == [(1, "message")]


def test_no_duplicate_keys_passes():
    body = b'[{"message":"a \\"quoted\\" \\\\ word"},{"message":"b"}]'
    check_duplicate_keys(body, parse_bulk(body, "application/json"), lines=False)


@pytest.mark.parametrize(
    ("body", "ctype", "lines"),
    [
        (b"[{}]", "application/json", False),
        (b" \r\n\t[{}]", "", False),
        (b"[{}]", "application/x-ndjson", True),
        (b'{"a":1}\n{"a":2}', "application/json", True),
        (b"", "application/json", True),
    ],
)
def test_is_ndjson(body, ctype, lines):
    assert is_ndjson(body, ctype) is lines


def test_deeply_nested_event_in_a_large_body_is_422_not_a_crash():
    """orjson parses 1,024 levels but writes only 255: the size check must not crash."""
    deep: list = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ValidationFailed) as info:
        check_event_sizes([{"message": "ok"}, {"message": "m", "x": deep}], MAX_EVENT_BYTES + 1)
    assert info.value.errors == [{"index": 1, "field": "event", "message": "nested too deeply"}]


def test_repeated_key_around_a_value_nested_too_deep_to_walk_is_422():
    deep = b"[" * 1000 + b"]" * 1000
    body = b'{"message":"m","attributes":' + deep + b',"attributes":{"x":1}}'
    with pytest.raises(ValidationFailed) as info:
        check_duplicate_keys(body, [orjson.loads(body)], lines=False)
    assert info.value.errors == [{"field": "body", "message": "repeated key"}]
