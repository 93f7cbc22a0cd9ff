"""Loki push decoding, checked against bodies written by a real Loki client.

The fixtures are what winston-loki 6.1.7 (scripts/loki-client, the client the
integration test drives) sent for the same three entries — job=checkout,
env=prod; "disk 91% full" (warn, region=eu-west-1), 'payment failed: card
"declined"' (error), "ok" (info) — once as snappy protobuf, once as JSON.
"""

from __future__ import annotations

from pathlib import Path

import cramjam
import orjson
import pytest

from services.core.errors import BadRequest, PayloadTooLarge
from services.log.events import normalize
from services.log.ingest import Refused
from services.log.shippers.loki import PushRequest, decode_json, decode_protobuf, parse_labels

FIXTURES = Path(__file__).parent / "fixtures"
PROTOBUF = (FIXTURES / "winston-loki-6.1.7-push.snappy-protobuf").read_bytes()
JSON = (FIXTURES / "winston-loki-6.1.7-push.json").read_bytes()
LIMIT = 10 * 1024 * 1024
RECEIVED = "2026-12-01T00:00:00.000Z"


def _snappy(message) -> bytes:
    return bytes(cramjam.snappy.compress_raw(message.SerializeToString()))


@pytest.mark.parametrize("decoded", [decode_protobuf(PROTOBUF, LIMIT), decode_json(JSON)])
def test_a_real_clients_push_maps_to_events(decoded):
    events = [normalize(raw, RECEIVED) for raw in decoded]
    assert [e["message"] for e in events] == [
        "disk 91% full",
        'payment failed: card "declined"',
        "ok",
    ]
    assert [e["level"] for e in events] == ["WARNING", "ERROR", "INFO"]
    assert {e["service"] for e in events} == {"checkout"}  # the job label
    assert events[0]["attributes"]["region"] == "eu-west-1"
    assert all(e["attributes"]["env"] == "prod" for e in events)
    assert all("job" not in e["attributes"] and "level" not in e["attributes"] for e in events)
    assert all(e["timestamp"].startswith("2026-11-30T11:46:") for e in events)
    assert all(e["id"].startswith("loki-") for e in events)


def test_the_same_entry_gets_the_same_id_as_loki_deduplicates():
    first = decode_protobuf(PROTOBUF, LIMIT)
    again = decode_protobuf(PROTOBUF, LIMIT)
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert len({r["id"] for r in first}) == 3


def _request(labels: str, *entries: tuple[int, str, dict[str, str]]):
    request = PushRequest()
    stream = request.streams.add()
    stream.labels = labels.encode()
    for nanos, line, metadata in entries:
        entry = stream.entries.add()
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(nanos, 1_000_000_000)
        entry.line = line.encode()
        for name, value in metadata.items():
            entry.structuredMetadata.add(name=name.encode(), value=value.encode())
    return request


def test_structured_metadata_service_level_and_trace_ids():
    body = _snappy(
        _request(
            '{service_name="api", job="varlogs", detected_level="unknown"}',
            (
                1_767_225_600_123_456_789,
                "GET /x 500",
                {"level": "error", "trace_id": "ab" * 16, "span_id": "cd" * 8, "pod": "p-1"},
            ),
        )
    )
    [raw] = decode_protobuf(body, LIMIT)
    event = normalize(raw, RECEIVED)
    assert event["service"] == "api" and event["level"] == "ERROR"
    assert event["trace_id"] == "ab" * 16 and event["span_id"] == "cd" * 8
    assert event["attributes"] == {"job": "varlogs", "detected_level": "unknown", "pod": "p-1"}
    assert event["timestamp"] == "2026-01-01T00:00:00.123Z"


def test_invalid_utf8_in_a_line_is_replaced_not_fatal():
    request = _request('{job="a"}', (1_767_225_600_000_000_000, "x", {}))
    request.streams[0].entries[0].line = b"bad \xff byte"
    [raw] = decode_protobuf(_snappy(request), LIMIT)
    assert raw["message"] == "bad \ufffd byte"


def test_an_out_of_range_timestamp_refuses_that_entry_only():
    body = _snappy(_request('{job="a"}', (10**20 * 3, "far", {}), (1, "ok", {})))
    far, ok = decode_protobuf(body, LIMIT)
    assert isinstance(far, Refused) and "timestamp" in far.reason
    assert ok["message"] == "ok"


@pytest.mark.parametrize(
    "body",
    [
        b"not snappy",
        bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff not protobuf")),
        PROTOBUF[:-5],
    ],
)
def test_malformed_protobuf_or_snappy_is_400(body):
    with pytest.raises(BadRequest):
        decode_protobuf(body, LIMIT)


def test_a_snappy_bomb_is_413():
    huge = _request('{job="a"}', *((1, "x" * 1000, {}) for _ in range(12_000)))
    with pytest.raises(PayloadTooLarge):
        decode_protobuf(_snappy(huge), LIMIT)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"streams": {}}',
        b'{"streams": [{"stream": {"a": 1}, "values": []}]}',
        b'{"streams": [{"stream": {}, "values": [["not ns", "line"]]}]}',
        b'{"streams": [{"stream": {}, "values": [["1", 2]]}]}',
        b'{"streams": [{"stream": {}, "values": [["1"]]}]}',
        b'{"streams": [{"stream": {}, "values": {}}]}',
    ],
)
def test_malformed_json_is_400(body):
    with pytest.raises(BadRequest):
        decode_json(body)


def test_json_without_timestamp_dedup_keeps_distinct_entries():
    body = orjson.dumps({"streams": [{"stream": {"app": "a"}, "values": [["0", "x"], ["0", "x"]]}]})
    first, second = decode_json(body)
    assert "id" not in first and "id" not in second  # no timestamp: new ids, both kept
    assert first["service"] == "a"


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("{}", {}),
        ('{a="1"}', {"a": "1"}),
        ('{ a = "1" , b="x,y" }', {"a": "1", "b": "x,y"}),
        (
            '{a="q\\"uote", b="back\\\\slash", c="new\\nline"}',
            {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"},
        ),
    ],
)
def test_parse_labels(text, labels):
    assert parse_labels(text) == labels


@pytest.mark.parametrize("text", ["", "a=1", '{a="1" b="2"}', "{a=1}", '{"a"="1"}', '{a="1"'])
def test_unparseable_labels_are_400(text):
    with pytest.raises(BadRequest):
        parse_labels(text)
