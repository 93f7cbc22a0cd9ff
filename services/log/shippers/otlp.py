"""OTLP/HTTP logs (``POST /otlp/v1/logs``): ExportLogsServiceRequest → our raw events.

The message classes are the published ones (``opentelemetry-proto``). Both
encodings decode to the same protobuf message: binary with ``FromString``, the
OTLP JSON encoding with ``json_format`` after turning its hex trace and span
ids into the base64 that proto3 JSON expects for bytes.

Mapping (docs/shipping.md#otlp): timestamp ← ``time_unix_nano``, else
``observed_time_unix_nano``; level ← ``severity_number`` (its range), else
``severity_text``; message ← the body (non-string bodies as JSON); service ←
the resource's ``service.name``; host ← ``host.name``; trace/span ids as hex;
id ← the ``log.record.uid`` attribute (idempotency); every other resource,
scope and record attribute → ``attributes``, under its own dotted name.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from services.core.errors import BadRequest
from services.core.logs.model import iso_from_nanos, parse_level
from services.log.ingest import Refused

RECORD_ID = "log.record.uid"
LIFTED = {"service.name": "service", "host.name": "host"}  # resource attribute → field
# severity_number ranges of the OTLP data model, by their first number
SEVERITY = ((21, "CRITICAL"), (17, "ERROR"), (13, "WARNING"), (9, "INFO"), (1, "DEBUG"))
_ID_FIELDS = ("traceId", "spanId", "trace_id", "span_id")


def decode_protobuf(body: bytes) -> ExportLogsServiceRequest:
    try:
        return ExportLogsServiceRequest.FromString(body)
    except DecodeError as exc:
        raise BadRequest(f"The body is not an OTLP ExportLogsServiceRequest: {exc}.") from None


def _hex_ids_to_base64(value: Any) -> None:
    """OTLP JSON writes trace and span ids in hex; proto3 JSON reads bytes as base64."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _ID_FIELDS and isinstance(item, str):
                try:
                    value[key] = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    raise BadRequest(f"{key} '{item[:40]}' is not hex.") from None
            else:
                _hex_ids_to_base64(item)
    elif isinstance(value, list):
        for item in value:
            _hex_ids_to_base64(item)


def decode_json(body: bytes) -> ExportLogsServiceRequest:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict):
        raise BadRequest("The body must be an OTLP ExportLogsServiceRequest JSON object.")
    _hex_ids_to_base64(doc)
    try:
        return json_format.ParseDict(doc, ExportLogsServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, ValueError, TypeError) as exc:
        raise BadRequest(f"The body is not an OTLP ExportLogsServiceRequest: {exc}.") from None


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _level(number: int, text: str) -> str | None:
    """The level from ``severity_number`` (normative), else from a known ``severity_text``."""
    if 0 < number <= 24:
        return next(level for first, level in SEVERITY if number >= first)
    return parse_level(text) if text else None


def _record(record: Any, base: dict[str, Any], fields: dict[str, str]) -> dict[str, Any] | Refused:
    raw: dict[str, Any] = dict(fields)
    attributes = dict(base)
    for kv in record.attributes:
        attributes[kv.key] = any_value(kv.value)
    uid = attributes.pop(RECORD_ID, None)
    if uid is not None:
        raw["id"] = uid
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if nanos:
        try:
            raw["timestamp"] = iso_from_nanos(nanos)
        except (OverflowError, OSError, ValueError):
            return Refused(f"timestamp: {nanos} ns is out of range")
    level = _level(record.severity_number, record.severity_text)
    if level is not None:
        raw["level"] = level
    elif record.severity_text:  # unknown words are kept, the level stays INFO
        attributes["severity_text"] = record.severity_text
    if record.HasField("body"):
        body = any_value(record.body)
        raw["message"] = body if isinstance(body, str) else orjson.dumps(body).decode()
    else:
        raw["message"] = record.event_name
    if record.event_name:
        attributes["event.name"] = record.event_name
    if any(record.trace_id):
        raw["trace_id"] = record.trace_id.hex()
    if any(record.span_id):
        raw["span_id"] = record.span_id.hex()
    if attributes:
        raw["attributes"] = attributes
    return raw


def to_raw_events(request: ExportLogsServiceRequest) -> list[dict[str, Any] | Refused]:
    """One raw event (for ``normalize``) per log record, in request order."""
    out: list[dict[str, Any] | Refused] = []
    for resource_logs in request.resource_logs:
        resource: dict[str, Any] = {}
        fields: dict[str, str] = {}
        for kv in resource_logs.resource.attributes:
            value = any_value(kv.value)
            if kv.key in LIFTED and isinstance(value, str):
                fields[LIFTED[kv.key]] = value
            else:
                resource[kv.key] = value
        for scope_logs in resource_logs.scope_logs:
            base = dict(resource)
            if scope_logs.scope.name:
                base["otel.scope.name"] = scope_logs.scope.name
            if scope_logs.scope.version:
                base["otel.scope.version"] = scope_logs.scope.version
            out.extend(_record(r, base, fields) for r in scope_logs.log_records)
    return out


def response(refused: list[str], as_json: bool) -> bytes:
    """ExportLogsServiceResponse: ``partial_success`` names how many were refused and why."""
    message = ExportLogsServiceResponse()
    if refused:
        shown = "; ".join(refused[:5]) + ("; ..." if len(refused) > 5 else "")
        message.partial_success.CopyFrom(
            ExportLogsPartialSuccess(
                rejected_log_records=len(refused),
                error_message=f"{len(refused)} log record(s) refused: {shown}",
            )
        )
    if as_json:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()
