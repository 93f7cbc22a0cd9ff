"""Elasticsearch _bulk: parsing action/source pairs, the ECS mapping, the replies."""

from __future__ import annotations

import orjson
import pytest

from services.core.errors import BadRequest
from services.log.events import normalize
from services.log.ingest import Refused
from services.log.shippers.elastic import (
    bulk_response,
    cluster_info,
    error_body,
    parse_bulk,
    to_raw_event,
)

RECEIVED = "2026-12-01T00:00:00.000Z"


def ndjson(*lines: object) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def test_ecs_document_nested_and_dotted():
    source = {
        "@timestamp": "2026-01-31T12:00:00.5Z",
        "log": {"level": "warn", "logger": "app.db"},
        "message": "slow query",
        "service": {"name": "orders", "version": "1.2"},
        "host.name": "db-1",
        "trace": {"id": "t-1"},
        "span.id": "s-1",
        "http": {"request": {"method": "POST"}},
        "event.duration": 1500,
    }
    event = normalize(to_raw_event(source, "logs-orders", "doc-1"), RECEIVED)
    assert event["id"] == "doc-1"
    assert event["timestamp"] == "2026-01-31T12:00:00.500Z"
    assert (event["level"], event["message"], event["service"]) == (
        "WARNING",
        "slow query",
        "orders",
    )
    assert (event["host"], event["trace_id"], event["span_id"]) == ("db-1", "t-1", "s-1")
    assert event["attributes"] == {
        "log": {"logger": "app.db"},
        "service": {"version": "1.2"},
        "http": {"request": {"method": "POST"}},
        "event.duration": 1500,
        "_index": "logs-orders",
    }


@pytest.mark.parametrize(
    ("source", "field", "value"),
    [
        ({"msg": "m", "level": "error"}, "level", "ERROR"),
        ({"log": "container line", "severity": "debug"}, "message", "container line"),
        ({"message": 42}, "message", "42"),
        ({"message": "m", "service": "plain"}, "service", "plain"),
        ({"message": "m", "hostname": "h"}, "host", "h"),
        (
            {"message": "m", "@timestamp": 1_767_225_600_000},
            "timestamp",
            "2026-01-01T00:00:00.000Z",
        ),
    ],
)
def test_common_spellings(source, field, value):
    assert normalize(to_raw_event(source, None, None), RECEIVED)[field] == value


def test_an_unknown_level_word_stays_an_attribute():
    event = normalize(to_raw_event({"message": "m", "log.level": "verbose"}, None, None), RECEIVED)
    assert event["level"] == "INFO" and event["attributes"] == {"log.level": "verbose"}


def test_bulk_actions_and_per_item_refusals():
    body = ndjson(
        {"index": {"_index": "a", "_id": "1"}},
        {"message": "one"},
        {"create": {}},
        {"message": "two"},
        {"delete": {"_id": "9"}},
        {"update": {"_id": "1"}},
        {"doc": {"message": "x"}},
        {"index": {}},
        ["not", "an", "object"],
    )
    items = parse_bulk(body + b'{"index": {}}\n{not json\n', "default")
    assert [i.action for i in items] == ["index", "create", "delete", "update", "index", "index"]
    assert [i.index for i in items] == ["a", "default", "default", "default", "default", "default"]
    assert items[0].doc_id == "1" and items[0].raw["message"] == "one"
    assert items[1].raw["attributes"] == {"_index": "default"}
    refused = [i.raw for i in items[2:]]
    assert all(isinstance(r, Refused) for r in refused)
    assert "append-only" in refused[0].reason and "update" in refused[1].reason
    assert "JSON object" in refused[2].reason and "parse" in refused[3].reason


@pytest.mark.parametrize(
    "body",
    [
        b"{not json}\n",
        ndjson({"index": {}, "create": {}}, {"message": "m"}),
        ndjson({"upsert": {}}, {"message": "m"}),
        ndjson({"index": "nope"}, {"message": "m"}),
        ndjson({"index": {}}),  # no source line
    ],
)
def test_a_malformed_action_line_fails_the_request(body):
    with pytest.raises(BadRequest):
        parse_bulk(body, None)


def test_bulk_response_shape():
    items = parse_bulk(ndjson({"create": {"_id": "x"}}, {"message": "m"}, {"delete": {}}), "i")
    doc = bulk_response(items, ["x", items[1].raw], started=0.0)
    assert doc["errors"] is True and isinstance(doc["took"], int)
    ok, bad = doc["items"]
    assert ok == {
        "create": {
            "_index": "i",
            "_id": "x",
            "_version": 1,
            "result": "created",
            "_shards": {"total": 1, "successful": 1, "failed": 0},
            "_seq_no": 0,
            "_primary_term": 1,
            "status": 201,
        }
    }
    assert bad["delete"]["status"] == 400
    assert bad["delete"]["error"]["type"] == "document_parsing_exception"
    clean = bulk_response(items[:1], ["x"], started=0.0)
    assert clean["errors"] is False


def test_error_body_and_cluster_info():
    body = error_body(401, "Invalid API key")
    assert body == {
        "error": {
            "root_cause": [{"type": "security_exception", "reason": "Invalid API key"}],
            "type": "security_exception",
            "reason": "Invalid API key",
        },
        "status": 401,
    }
    assert cluster_info()["version"]["number"].startswith("8.")
