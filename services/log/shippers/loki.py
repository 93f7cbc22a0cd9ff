"""Loki push (``POST /loki/api/v1/push``): JSON or snappy protobuf → our raw events.

No maintained PyPI package ships Loki's generated ``logproto`` classes, so the
push messages are declared here as a protobuf schema — the field numbers and
types of ``pkg/push/push.proto`` in grafana/loki (``PushRequest``,
``StreamAdapter``, ``EntryAdapter``, ``LabelPairAdapter``) — and protobuf's own
runtime builds the classes and parses the wire format, so malformed input is
refused by a maintained parser, not by code of ours. The string fields are
declared ``bytes`` (same wire type): Go's encoder does not check UTF-8, and one
bad byte in a line must not cost a whole batch; they are decoded with
replacement. ``tests/unit/log/shippers/test_loki.py`` checks the schema against
a body written by a real Loki client.

Mapping: message ← the line; timestamp ← the entry's; service ← label
``service_name``, else ``job``, else ``app``; level ← label (or structured
metadata) ``level``, ``severity`` or ``detected_level``; trace/span ids ←
structured metadata ``trace_id``/``span_id``; every other label and structured
metadata → ``attributes``. Loki drops an entry whose stream, timestamp and line
equal one it has; so do we: the id is a hash of the three, so a retried push
stores nothing twice (an entry without a timestamp gets a new id).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import DecodeError, Message

from services.core.errors import BadRequest
from services.core.logs.model import iso_from_nanos, parse_level
from services.log.compression import unsnappy
from services.log.ingest import Refused

SERVICE_LABELS = ("service_name", "job", "app")
LEVEL_LABELS = ("level", "severity", "detected_level")
TRACE_KEYS = {
    "trace_id": "trace_id",
    "traceID": "trace_id",
    "span_id": "span_id",
    "spanID": "span_id",
}
_F = descriptor_pb2.FieldDescriptorProto


def _push_request_class() -> type[Message]:
    def field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False):
        label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
        proto = _F(name=name, number=number, type=kind, label=label)
        if type_name:
            proto.type_name = type_name
        return proto

    schema = descriptor_pb2.FileDescriptorProto(
        name="logserver/loki_push.proto",
        package="logproto",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    schema.message_type.add(
        name="PushRequest",
        field=[field("streams", 1, _F.TYPE_MESSAGE, ".logproto.StreamAdapter", True)],
    )
    schema.message_type.add(
        name="StreamAdapter",
        field=[
            field("labels", 1, _F.TYPE_BYTES),
            field("entries", 2, _F.TYPE_MESSAGE, ".logproto.EntryAdapter", True),
            field("hash", 3, _F.TYPE_UINT64),
        ],
    )
    schema.message_type.add(
        name="EntryAdapter",
        field=[
            field("timestamp", 1, _F.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
            field("line", 2, _F.TYPE_BYTES),
            field("structuredMetadata", 3, _F.TYPE_MESSAGE, ".logproto.LabelPairAdapter", True),
        ],
    )
    schema.message_type.add(
        name="LabelPairAdapter",
        field=[field("name", 1, _F.TYPE_BYTES), field("value", 2, _F.TYPE_BYTES)],
    )
    pool = descriptor_pool.DescriptorPool()  # private: nothing else registers logproto
    pool.AddSerializedFile(timestamp_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest = _push_request_class()

_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)', re.DOTALL)
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


def parse_labels(text: str) -> dict[str, str]:
    """A Prometheus label set, ``{job="api", level="info"}``, as Loki's protobuf carries it."""
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        raise BadRequest(f"Stream labels '{text[:80]}' are not {{name=\"value\", ...}}.")
    inner = inner[1:-1].strip()
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        match = _LABEL.match(inner, pos)
        if match is None:
            near = inner[pos : pos + 20]
            raise BadRequest(f"Stream labels '{text[:80]}' cannot be parsed near '{near}'.")
        value = re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(0)), match.group(2))
        labels[match.group(1)] = value
        pos = match.end()
    return labels


class _Stream:
    """What every entry of one stream shares: fields from labels, attributes, id seed."""

    def __init__(self, labels: dict[str, str]) -> None:
        attributes = dict(labels)
        self.fields: dict[str, str] = {}
        for name in SERVICE_LABELS:
            if name in attributes:
                self.fields["service"] = attributes.pop(name)
                break
        for name in LEVEL_LABELS:
            if name in attributes and (level := parse_level(attributes[name])):
                self.fields["level"] = level
                del attributes[name]
                break
        self.attributes = attributes
        self.seed = orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)

    def event(self, nanos: int, line: str, metadata: dict[str, str]) -> dict[str, Any] | Refused:
        raw: dict[str, Any] = dict(self.fields)
        attributes = dict(self.attributes)
        for key, value in metadata.items():
            if key in TRACE_KEYS:
                raw[TRACE_KEYS[key]] = value
            elif key in LEVEL_LABELS and (level := parse_level(value)):
                if raw.setdefault("level", level) != level:  # disagrees with the label: keep
                    attributes[key] = value
            else:
                attributes[key] = value
        if nanos:
            try:
                raw["timestamp"] = iso_from_nanos(nanos)
            except (OverflowError, OSError, ValueError):
                return Refused(f"timestamp: {nanos} ns is out of range")
            digest = hashlib.blake2b(self.seed, digest_size=16)
            digest.update(nanos.to_bytes(12, "big", signed=True))
            digest.update(line.encode())
            raw["id"] = "loki-" + digest.hexdigest()
        raw["message"] = line
        if attributes:
            raw["attributes"] = attributes
        return raw


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def decode_protobuf(body: bytes, limit: int) -> list[dict[str, Any] | Refused]:
    try:
        request = PushRequest.FromString(unsnappy(body, limit))
    except DecodeError as exc:
        raise BadRequest(f"The body is not a Loki PushRequest: {exc}.") from None
    out: list[dict[str, Any] | Refused] = []
    for stream in request.streams:
        shared = _Stream(parse_labels(_text(stream.labels)))
        for entry in stream.entries:
            nanos = entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos
            metadata = {_text(p.name): _text(p.value) for p in entry.structuredMetadata}
            out.append(shared.event(nanos, _text(entry.line), metadata))
    return out


def _bad(what: str) -> BadRequest:
    return BadRequest(f"The body is not a Loki push request: {what}.")


def decode_json(body: bytes) -> list[dict[str, Any] | Refused]:
    """``{"streams": [{"stream": {labels}, "values": [["<ns>", "line", {metadata}?], ...]}]}``"""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    streams = doc.get("streams") if isinstance(doc, dict) else None
    if not isinstance(streams, list):
        raise _bad("no 'streams' array")
    out: list[dict[str, Any] | Refused] = []
    for s, stream in enumerate(streams):
        labels = stream.get("stream", {}) if isinstance(stream, dict) else None
        values = stream.get("values") if isinstance(stream, dict) else None
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise _bad(f"streams[{s}].stream must be an object of strings")
        if not isinstance(values, list):
            raise _bad(f"streams[{s}].values must be an array")
        shared = _Stream(labels)
        for v, value in enumerate(values):
            if not (
                isinstance(value, list)
                and len(value) in (2, 3)
                and isinstance(value[0], str)
                and value[0].isdigit()
                and isinstance(value[1], str)
                and (len(value) == 2 or isinstance(value[2], dict))
            ):
                raise _bad(f'streams[{s}].values[{v}] must be ["<unix ns>", "<line>", {{...}}?]')
            metadata = {k: str(m) for k, m in value[2].items()} if len(value) == 3 else {}
            out.append(shared.event(int(value[0]), value[1], metadata))
    return out
