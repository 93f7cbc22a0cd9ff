"""OTLP logs: protobuf and JSON decoding, the mapping to events, the response."""

from __future__ import annotations

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from services.core.errors import BadRequest
from services.log.events import normalize
from services.log.ingest import Refused
from services.log.shippers.otlp import (
    any_value,
    decode_json,
    decode_protobuf,
    response,
    to_raw_events,
)

RECEIVED = "2026-12-01T00:00:00.000Z"
T = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z


def kv(key: str, **value) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def request(*records, resource=(), scope_name="app.module") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(resource)
    sl = rl.scope_logs.add()
    sl.scope.name = scope_name
    sl.log_records.extend(LogRecord(**r) for r in records)
    return req


def events_of(req: ExportLogsServiceRequest) -> list:
    return [r if isinstance(r, Refused) else normalize(r, RECEIVED) for r in to_raw_events(req)]


def test_a_record_maps_to_an_event():
    req = request(
        {
            "time_unix_nano": T,
            "severity_number": 13,
            "severity_text": "WARN",
            "body": AnyValue(string_value="disk 91% full"),
            "attributes": [
                kv("http.request.method", string_value="GET"),
                kv("retries", int_value=3),
                kv("log.record.uid", string_value="01JABCDEF"),
            ],
            "trace_id": bytes.fromhex("5b8efff798038103d269b633813fc60c"),
            "span_id": bytes.fromhex("eee19b7ec3c1b174"),
        },
        resource=[
            kv("service.name", string_value="checkout"),
            kv("host.name", string_value="node-1"),
            kv("deployment.environment", string_value="prod"),
        ],
    )
    [event] = events_of(req)
    assert event["id"] == "01JABCDEF"
    assert event["timestamp"] == "2026-01-01T00:00:00.123Z"
    assert event["level"] == "WARNING" and event["message"] == "disk 91% full"
    assert event["service"] == "checkout" and event["host"] == "node-1"
    assert event["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert event["span_id"] == "eee19b7ec3c1b174"
    assert event["attributes"] == {
        "deployment.environment": "prod",
        "otel.scope.name": "app.module",
        "http.request.method": "GET",
        "retries": 3,
    }


@pytest.mark.parametrize(
    ("number", "text", "level"),
    [
        (1, "", "DEBUG"),
        (5, "", "DEBUG"),
        (9, "whatever", "INFO"),  # the number wins
        (16, "", "WARNING"),
        (17, "", "ERROR"),
        (24, "", "CRITICAL"),
        (0, "error", "ERROR"),
        (0, "", "INFO"),
        (0, "Chatty", "INFO"),
    ],
)
def test_severity(number, text, level):
    [event] = events_of(
        request(
            {"severity_number": number, "severity_text": text, "body": AnyValue(string_value="m")}
        )
    )
    assert event["level"] == level
    assert ("severity_text" in event.get("attributes", {})) == (text == "Chatty")


def test_observed_time_is_the_fallback_and_no_time_is_received_time():
    timed, untimed = events_of(
        request(
            {"observed_time_unix_nano": T, "body": AnyValue(string_value="a")},
            {"body": AnyValue(string_value="b")},
        )
    )
    assert timed["timestamp"] == "2026-01-01T00:00:00.123Z"
    assert untimed["timestamp"] == RECEIVED


def test_structured_bodies_become_json_messages():
    body = AnyValue()
    body.kvlist_value.values.extend([kv("user", string_value="u1"), kv("ok", bool_value=True)])
    [event] = events_of(request({"body": body}))
    assert orjson.loads(event["message"]) == {"user": "u1", "ok": True}


def test_any_value_kinds():
    arr = AnyValue()
    arr.array_value.values.extend([AnyValue(int_value=1), AnyValue(double_value=2.5)])
    assert any_value(arr) == [1, 2.5]
    assert any_value(AnyValue(bytes_value=b"\x00\x01")) == "AAE="
    assert any_value(AnyValue()) is None


def test_a_record_the_store_cannot_hold_is_refused_alone():
    deep = AnyValue(string_value="x")
    for _ in range(12):
        outer = AnyValue()
        outer.kvlist_value.values.append(KeyValue(key="k", value=deep))
        deep = outer
    raws = to_raw_events(
        request(
            {"body": AnyValue(string_value="ok")},
            {
                "body": AnyValue(string_value="too deep"),
                "attributes": [KeyValue(key="d", value=deep)],
            },
            {"time_unix_nano": 2**63, "body": AnyValue(string_value="year 2262 is fine")},
        )
    )
    assert isinstance(raws[0], dict) and isinstance(raws[2], dict)
    with pytest.raises(Exception, match="nested deeper"):
        normalize(raws[1], RECEIVED)


def test_json_encoding_decodes_to_the_same_events():
    req = request(
        {
            "time_unix_nano": T,
            "severity_number": 17,
            "body": AnyValue(string_value="boom"),
            "trace_id": bytes.fromhex("5b8efff798038103d269b633813fc60c"),
            "attributes": [
                kv("http.response.status_code", int_value=500),
                kv("log.record.uid", string_value="uid-1"),
            ],
        },
        resource=[kv("service.name", string_value="api")],
    )
    doc = json_format.MessageToDict(req)
    # OTLP JSON writes ids in hex and keeps int64 as strings, unlike proto3 JSON's base64
    doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = (
        "5b8efff798038103d269b633813fc60c"
    )
    assert events_of(decode_json(orjson.dumps(doc))) == events_of(req)
    assert events_of(decode_protobuf(req.SerializeToString())) == events_of(req)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"resourceLogs": "nope"}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}',
    ],
)
def test_malformed_json_is_400(body):
    with pytest.raises(BadRequest):
        decode_json(body)


@pytest.mark.parametrize(
    "body", [b"\xff\xff\xff\xff", b"\x0a\x05abc", b"garbage that is not protobuf"]
)
def test_malformed_protobuf_is_400(body):
    with pytest.raises(BadRequest):
        decode_protobuf(body)


def test_response_in_both_encodings():
    assert response([], as_json=False) == b""
    assert orjson.loads(response([], as_json=True)) == {}
    parsed = ExportLogsServiceResponse.FromString(response(["a: bad", "b: bad"], as_json=False))
    assert parsed.partial_success.rejected_log_records == 2
    assert "a: bad" in parsed.partial_success.error_message
    doc = orjson.loads(response(["x"] * 7, as_json=True))
    assert doc["partialSuccess"]["rejectedLogRecords"] == "7"
    assert doc["partialSuccess"]["errorMessage"].endswith("; ...")
