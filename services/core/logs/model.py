"""The log event model shared by ingest (log), storage (worker) and tail (broadcast).

Three shapes of one event:
- *wire*: the normalized event as JSON in a queue message and on Redis, with
  RFC 3339 timestamps (``...Z``);
- *document*: what MongoDB stores — datetimes, a composite ``_id``, a numeric
  ``level_no`` for ``min_level`` ranges and a ``minute`` bucket for histograms
  (FerretDB v1 has no ``$dateTrunc``, so the bucket is computed at write time);
- *API*: what search, export and tail return — the wire shape.

Keys holding a ``.`` (``http.request.method``, as OpenTelemetry and ECS name
attributes) are kept as written in the wire and API shapes. MongoDB reads a
``.`` in a key as a path, so the document shape stores each ``.`` of a key in
the object fields as U+FF0E (FULLWIDTH FULL STOP, the substitute MongoDB's
own documentation suggests); :func:`wire_to_document` and
:func:`document_to_api` swap them, and ingest refuses keys that already hold
U+FF0E, so the swap is reversible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

LOGS = "logs"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LEVEL_NO = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_ALIASES = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "information": "INFO",
    "informational": "INFO",  # syslog's name of severity 6
    "notice": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "err": "ERROR",
    "critical": "CRITICAL",
    "crit": "CRITICAL",
    "fatal": "CRITICAL",
    "alert": "CRITICAL",
    "emergency": "CRITICAL",
    "emerg": "CRITICAL",  # syslog's keyword (rsyslog's syslogseverity-text)
    "panic": "CRITICAL",
}

STRING_FIELDS = (
    "service",
    "host",
    "trace_id",
    "span_id",
    "action",
    "resource_type",
    "resource_id",
    "user_id",
    "ip_address",
    "user_agent",
)
OBJECT_FIELDS = ("before", "after", "metadata")
KEYED_FIELDS = (*OBJECT_FIELDS, "attributes")  # objects whose keys are the client's
STORED_DOT = "\uff0e"
API_FIELDS = (
    "id",
    "timestamp",
    "received_at",
    "tenant_id",
    "level",
    "message",
    *STRING_FIELDS,
    *OBJECT_FIELDS,
    "attributes",
)


def parse_level(value: str) -> str | None:
    return LEVEL_ALIASES.get(value.strip().lower())


def iso(dt: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a ``Z`` (what MongoDB can keep exactly)."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_last_second: list[Any] = [None, ""]  # (Unix second, its RFC 3339 text): one batch shares few


def iso_from_nanos(nanos: int) -> str:
    """:func:`iso` of Unix time in nanoseconds (OTLP, Loki), truncated to the millisecond.

    The records of one shipper batch mostly fall in a few seconds, so the text of the
    last second is kept: formatting a datetime per record was a tenth of OTLP ingest.
    """
    seconds, millis = divmod(nanos // 1_000_000, 1000)
    if seconds != _last_second[0]:
        text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
        _last_second[:] = [seconds, text[:-6]]  # without "+00:00"
    return f"{_last_second[1]}.{millis:03d}Z"


def parse_iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def doc_id(tenant_id: str, event_id: str) -> str:
    """``_id`` of a stored event. Tenant keys are slugs (no ':'), so this is unambiguous,
    and a redelivered message collides on ``_id`` (idempotency) even where the storage
    only pushes ``_id`` equality down to its engine (FerretDB on SQLite)."""
    return f"{tenant_id}:{event_id}"


def _swap_keys(value: Any, old: str, new: str) -> Any:
    """``value`` with ``old`` replaced by ``new`` in every key of every nested object;
    ``value`` itself (no copy) when no key holds ``old``, the common case."""
    if isinstance(value, dict):
        changed = False
        items = []
        for key, item in value.items():
            new_item = _swap_keys(item, old, new)
            if old in key:
                key = key.replace(old, new)
                changed = True
            changed = changed or new_item is not item
            items.append((key, new_item))
        return dict(items) if changed else value
    if isinstance(value, list):
        swapped = [_swap_keys(item, old, new) for item in value]
        return swapped if any(a is not b for a, b in zip(swapped, value, strict=True)) else value
    return value


def stored_key(key: str) -> str:
    """A client's key as the document shape stores it (``.`` → U+FF0E)."""
    return key.replace(".", STORED_DOT)


def wire_to_document(tenant_id: str, event: dict[str, Any]) -> dict[str, Any]:
    doc = dict(event)
    for name in KEYED_FIELDS:
        value = doc.get(name)
        if value:
            doc[name] = _swap_keys(value, ".", STORED_DOT)
    ts = parse_iso(event["timestamp"])
    doc["_id"] = doc_id(tenant_id, event["id"])
    doc["tenant_id"] = tenant_id
    doc["timestamp"] = ts
    doc["received_at"] = parse_iso(event["received_at"])
    doc["level_no"] = LEVEL_NO[event["level"]]
    doc["minute"] = ts.replace(second=0, microsecond=0)
    return doc


def document_to_api(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in API_FIELDS:
        value = doc.get(key)
        if value is None:
            continue
        out[key] = iso(value) if isinstance(value, datetime) else value
    for name in KEYED_FIELDS:
        value = out.get(name)
        if value:
            out[name] = _swap_keys(value, STORED_DOT, ".")
    return out
