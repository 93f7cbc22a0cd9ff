"""Elasticsearch ``_bulk`` (NDJSON action/source pairs) → our raw events, and ES replies.

Enough of the Elasticsearch API for log shippers: the cluster info of ``GET /``
(an 8.x version, which clients check), ``_bulk`` with ``index`` and ``create``
actions answered per item, and errors in Elasticsearch's shape, which clients
parse. ``update`` and ``delete`` are refused per item: logs are append-only.

Mapping of a source document (ECS names, nested or dotted, and common
spellings): timestamp ← ``@timestamp``/``timestamp``/``time``; level ←
``log.level``/``level``/``severity``; message ← ``message``/``msg``/``log``;
service ← ``service.name``/``service``; host ← ``host.name``/``hostname``/
``host``; trace/span ids ← ``trace.id``/``span.id`` (or ``trace_id``/
``span_id``); id ← the action's ``_id`` (idempotency); the index → attribute
``_index``; every other field → ``attributes``, nested or dotted as written.
The index name never chooses the tenant: the credential does.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from services.core.errors import BadRequest
from services.core.logs.model import parse_level
from services.log.ingest import Refused

VERSION = "8.17.0"  # what GET / reports: clients and shippers accept 8.x
WRITE_ACTIONS = frozenset({"index", "create"})
ACTIONS = frozenset({*WRITE_ACTIONS, "update", "delete"})
# (our field, the paths that may hold it, first found wins); a path is nested keys
# or one dotted key (ECS allows both)
FIELDS = (
    ("timestamp", ("@timestamp", "timestamp", "time")),
    ("level", ("log.level", "level", "severity")),
    ("message", ("message", "msg", "log")),
    ("service", ("service.name", "service")),
    ("host", ("host.name", "hostname", "host")),
    ("trace_id", ("trace.id", "trace_id")),
    ("span_id", ("span.id", "span_id")),
)


class BulkItem:
    """One action of a bulk request: what to answer about it, and its raw event."""

    __slots__ = ("action", "doc_id", "index", "raw")

    def __init__(self, action: str, index: str | None, doc_id: str | None, raw: Any) -> None:
        self.action = action
        self.index = index
        self.doc_id = doc_id
        self.raw = raw  # dict (raw event) or Refused


# the same paths, split once: (path, head, rest) with head/rest for one level of nesting
_SPLIT = tuple(
    (name, tuple((path, *path.split(".", 1)) if "." in path else (path, "", "") for path in paths))
    for name, paths in FIELDS
)


def _scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def to_raw_event(source: dict[str, Any], index: str | None, doc_id: str | None) -> dict[str, Any]:
    """The raw event of one source document; ``source`` is consumed (what is left of it
    becomes the attributes). Straight-line lookups: this runs for every document."""
    raw: dict[str, Any] = {}
    for name, paths in _SPLIT:
        for path, head, rest in paths:
            holder: dict[str, Any] | None = None
            if path in source and _scalar(source[path]):
                holder, key = source, path  # a plain or dotted key
            elif head and isinstance(inner := source.get(head), dict) and _scalar(inner.get(rest)):
                holder, key = inner, rest  # one level of nesting ({"log": {"level": ...}})
            if holder is None:
                continue
            value = holder[key]
            if name == "level" and not (isinstance(value, str) and parse_level(value)):
                continue  # an unknown level word stays an attribute; the level is INFO
            raw[name] = value if isinstance(value, str) or name == "timestamp" else str(value)
            del holder[key]
            if holder is not source and not holder:
                del source[head]  # {"log": {"level": "info"}} leaves no empty {"log": {}}
            break
    if doc_id is not None:
        raw["id"] = doc_id
    if index:
        source["_index"] = index
    if source:
        raw["attributes"] = source
    return raw


def _action(line: bytes, number: int, default_index: str | None) -> tuple[str, str | None, Any]:
    try:
        action = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Malformed action/metadata line [{number}]: {exc}.") from None
    if not isinstance(action, dict) or len(action) != 1:
        raise BadRequest(f"Malformed action/metadata line [{number}]: expected one action.")
    [(name, meta)] = action.items()
    if name not in ACTIONS or not isinstance(meta, dict):
        raise BadRequest(f"Malformed action/metadata line [{number}]: unknown action '{name}'.")
    index = meta.get("_index", default_index)
    doc_id = meta.get("_id")
    return name, None if index is None else str(index), None if doc_id is None else str(doc_id)


def parse_bulk(body: bytes, default_index: str | None) -> list[BulkItem]:
    """The actions of an NDJSON bulk body, each with its raw event or why it is refused.

    A malformed action line fails the whole request (as in Elasticsearch); a
    source line that is not a JSON object fails only its item.
    """
    lines = [line for line in body.split(b"\n") if line.strip()]
    items: list[BulkItem] = []
    i = 0
    while i < len(lines):
        name, index, doc_id = _action(lines[i], i + 1, default_index)
        i += 1
        if name == "delete":
            items.append(BulkItem(name, index, doc_id, Refused("logs are append-only")))
            continue
        if i >= len(lines):
            raise BadRequest(f"The {name} action on line [{i}] has no source line after it.")
        source_line = lines[i]
        i += 1
        if name == "update":
            raw: Any = Refused("logs are append-only: update is not supported")
        else:
            try:
                source = orjson.loads(source_line)
            except orjson.JSONDecodeError as exc:
                source = None
                raw = Refused(f"failed to parse the document: {exc}")
            if isinstance(source, dict):
                raw = to_raw_event(source, index, doc_id)
            elif source is not None:
                raw = Refused("the document must be a JSON object")
        items.append(BulkItem(name, index, doc_id, raw))
    return items


def bulk_response(items: list[BulkItem], outcomes: list[str | Refused], started: float) -> dict:
    out: list[dict[str, Any]] = []
    errors = False
    for n, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
        result: dict[str, Any] = {"_index": item.index or "logs"}
        if isinstance(outcome, Refused):
            errors = True
            result |= {
                "_id": item.doc_id,
                "status": 400,
                "error": {"type": "document_parsing_exception", "reason": outcome.reason},
            }
        else:
            result |= {
                "_id": outcome,
                "_version": 1,
                "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": n,
                "_primary_term": 1,
                "status": 201,
            }
        out.append({item.action: result})
    took = int((time.monotonic() - started) * 1000)
    return {"took": took, "errors": errors, "items": out}


ERROR_TYPES = {
    400: "illegal_argument_exception",
    401: "security_exception",
    403: "security_exception",
    404: "resource_not_found_exception",
    413: "content_too_long_exception",
    415: "illegal_argument_exception",
    422: "illegal_argument_exception",
    # What Elasticsearch answers when it cannot take more; Beats, Logstash, Fluent Bit and
    # the official clients retry a 429 (after Retry-After when given).
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
}


def error_body(status: int, reason: str) -> dict[str, Any]:
    """An error as Elasticsearch writes it (its clients read ``error.type``/``reason``)."""
    cause = {"type": ERROR_TYPES.get(status, "exception"), "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def cluster_info() -> dict[str, Any]:
    return {
        "name": "logserver",
        "cluster_name": "logserver",
        "cluster_uuid": "logserver-es-compatible-ingest",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "logserver",
            "build_hash": "logserver",
            "build_date": "2026-01-01T00:00:00.000Z",
            "build_snapshot": False,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
    }


def cluster_health() -> dict[str, Any]:
    """``_cluster/health`` (Vector's health check) and ``_cat/health`` (rsyslog's)."""
    return {
        "cluster_name": "logserver",
        "status": "green",
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": 0,
        "active_shards": 0,
    }
