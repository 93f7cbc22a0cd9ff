"""Ingest: read a bounded body, validate and normalize, hand to the batcher.

Each bulk body first tries ``fastdecode`` (typed decoding in C; most bodies), then,
if that does not take it whole, the exact path here, which alone answers errors.

Validation refuses, before anything is queued, whatever the worker could not
store or the tenant would not keep: 202 means the events will be stored and found.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from services.core.errors import PayloadTooLarge, ValidationFailed
from services.core.logs.model import iso_from_nanos
from services.log import fastdecode
from services.log.batcher import IngestBatcher
from services.log.compression import decode_content
from services.log.duplicates import duplicate_key_errors
from services.log.events import MAX_DEPTH, MAX_EVENT_BYTES, EventError, TimeWindow, normalize

MAX_BULK_EVENTS = 10_000
MAX_BULK_BYTES = 10 * 1024 * 1024
MAX_REPORTED_ERRORS = 100
_ARRAY_START = re.compile(rb"\s*\[")  # what body.lstrip().startswith(b"[") says, without a copy


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """Read at most ``limit`` bytes; a larger body is refused before it is all read.

    A ``Content-Encoding: gzip`` body is inflated, to at most ``limit`` bytes too.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} is {int(declared):,} bytes; the limit is {limit:,} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"{what} is over the limit of {limit:,} bytes.")
        chunks.append(chunk)
    return decode_content(b"".join(chunks), request.headers.get("content-encoding"), limit)


def _loads(raw: bytes, where: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{where} is not valid JSON: {exc}", errors=[{"field": "body", "message": str(exc)}]
        ) from None


def is_ndjson(body: bytes, content_type: str) -> bool:
    """NDJSON unless the body starts with '[' and the content type does not say ndjson."""
    return "ndjson" in content_type or _ARRAY_START.match(body) is None


def parse_bulk(body: bytes, content_type: str) -> list[Any]:
    """A JSON array, or NDJSON (one object per line; blank lines ignored)."""
    if not is_ndjson(body, content_type):
        events = _loads(body, "The body")
        return events
    events = []
    for lineno, line in enumerate(body.splitlines(), start=1):
        if line.strip():
            if len(line) > MAX_EVENT_BYTES:
                raise PayloadTooLarge(
                    f"Event {len(events)} (line {lineno}) is over {MAX_EVENT_BYTES:,} bytes."
                )
            events.append(_loads(line, f"Line {lineno}"))
    return events


def _refuse(errors: list[dict[str, Any]]) -> ValidationFailed:
    first = errors[0]
    return ValidationFailed(
        f"{len(errors)} event(s) invalid, nothing was accepted; first: event "
        f"{first['index']}, {first['field']}: {first['message']}",
        errors=errors,
    )


def check_duplicate_keys(body: bytes, raw_events: list[Any], lines: bool) -> None:
    """A 422 naming each event (index) and key that appears twice in one object.

    Call it once the events passed :func:`normalize_all`, which bounds their nesting.
    """
    try:
        errors = duplicate_key_errors(body, raw_events, lines)
    except RecursionError:  # a repeated key held a value nested ~1000 deep (orjson's limit)
        raise ValidationFailed(
            "The body repeats a key in an object nested too deeply to name it; "
            "JSON keys must be unique.",
            errors=[{"field": "body", "message": "repeated key"}],
        ) from None
    if errors:
        raise _refuse(errors)


def normalize_all(
    raw_events: list[Any], received_at: str, window: TimeWindow | None = None
) -> list[dict[str, Any]]:
    """All-or-nothing: every event valid, or a 422 listing each bad index and field."""
    out: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        try:
            out.append(normalize(raw, received_at, window))
        except EventError as exc:
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append({"index": index, "field": exc.field, "message": exc.message})
            else:
                break
    if errors:
        raise _refuse(errors)
    return out


def check_event_sizes(raw_events: list[Any], body_size: int) -> None:
    if body_size <= MAX_EVENT_BYTES:
        return  # no single event can be larger than the whole body
    for index, raw in enumerate(raw_events):
        try:
            size = len(orjson.dumps(raw))
        except orjson.JSONEncodeError:  # orjson writes at most 255 levels; parsing took 1024
            raise ValidationFailed(
                f"Event {index} is nested deeper than {MAX_DEPTH} levels.",
                errors=[{"index": index, "field": "event", "message": "nested too deeply"}],
            ) from None
        if size > MAX_EVENT_BYTES:
            raise PayloadTooLarge(
                f"Event {index} is {size:,} bytes; one event may be at most {MAX_EVENT_BYTES:,}.",
                errors=[{"index": index, "field": "event", "message": "too large"}],
            )


async def ingest_one(
    batcher: IngestBatcher, tenant_id: str, body: bytes, received_at: str, retention_days: int
) -> str:
    """``retention_days``: the tenant's (0 = kept forever); older events are refused.

    Not through ``fastdecode``: for one event its fixed costs outweigh what it saves."""
    raw = _loads(body, "The body")
    if isinstance(raw, list):
        raise ValidationFailed(
            "POST /api/v1/logs takes one event object; send arrays to /api/v1/logs/bulk.",
            errors=[{"field": "body", "message": "expected an object"}],
        )
    event = normalize_all([raw], received_at, TimeWindow(received_at, retention_days))[0]
    check_duplicate_keys(body, [raw], lines=False)
    await batcher.submit(tenant_id, [orjson.dumps(event)])
    return event["id"]


async def ingest_bulk(
    batcher: IngestBatcher,
    tenant_id: str,
    body: bytes,
    content_type: str,
    received_at: str,
    retention_days: int,
) -> list[str]:
    """All of the events queued, or none; ``retention_days`` as for :func:`ingest_one`."""
    window = TimeWindow(received_at, retention_days)
    lines = is_ndjson(body, content_type)
    decoded = fastdecode.decode_bulk(body, lines)
    if (
        decoded
        and len(decoded) <= MAX_BULK_EVENTS
        and (done := fastdecode.finish(body, decoded, received_at, window))
    ):
        encoded, ids = done
        await batcher.submit(tenant_id, encoded)
        return ids
    raw_events = parse_bulk(body, content_type)
    if not isinstance(raw_events, list):
        raise ValidationFailed(
            "The body must be a JSON array of events or NDJSON (one event per line).",
            errors=[{"field": "body", "message": "expected an array"}],
        )
    if not raw_events:
        raise ValidationFailed(
            "The request holds no events.", errors=[{"field": "body", "message": "empty"}]
        )
    if len(raw_events) > MAX_BULK_EVENTS:
        raise PayloadTooLarge(
            f"{len(raw_events):,} events in one request; the limit is {MAX_BULK_EVENTS:,}."
        )
    check_event_sizes(raw_events, len(body))
    events = normalize_all(raw_events, received_at, window)
    check_duplicate_keys(body, raw_events, lines)
    await batcher.submit(tenant_id, [orjson.dumps(e) for e in events])
    return [e["id"] for e in events]


@dataclass(frozen=True, slots=True)
class Refused:
    """One record of a shipper's batch that was not accepted, and why."""

    reason: str


async def ingest_records(
    batcher: IngestBatcher,
    tenant_id: str,
    raws: list[Any],
    received_at: str,
    retention_days: int = 0,
) -> list[str | Refused]:
    """Per record, unlike :func:`ingest_bulk`: what the shipper protocols need (OTLP
    partial success, Elasticsearch per-item status). Each raw event is normalized on
    its own; the valid ones are queued together (all or none: a 503 fails the call),
    the others are returned as :class:`Refused`, never queued. ``raws`` may already
    hold :class:`Refused` records (refused while decoding); the result has one entry
    per record, in order: the event id, or why it was refused. A record older than
    ``retention_days`` (the tenant's; 0 = kept forever) is refused like any other."""
    if len(raws) > MAX_BULK_EVENTS:
        raise PayloadTooLarge(
            f"{len(raws):,} records in one request; the limit is {MAX_BULK_EVENTS:,}: "
            "send smaller batches."
        )
    outcomes: list[str | Refused] = []
    encoded: list[bytes] = []
    window = TimeWindow(received_at, retention_days)
    for raw in raws:
        if isinstance(raw, Refused):
            outcomes.append(raw)
            continue
        try:
            event = normalize(raw, received_at, window)
        except EventError as exc:
            outcomes.append(Refused(f"{exc.field}: {exc.message}"))
            continue
        data = orjson.dumps(event)
        if len(data) > MAX_EVENT_BYTES:
            outcomes.append(
                Refused(f"the event is {len(data):,} bytes; one may be at most {MAX_EVENT_BYTES:,}")
            )
            continue
        encoded.append(data)
        outcomes.append(event["id"])
    if encoded:
        await batcher.submit(tenant_id, encoded)
    return outcomes


def now_iso() -> str:
    """:func:`iso` of now; the text of the current second is reused (a per-request
    datetime formatting was 3 % of a single-event ingest's CPU)."""
    return iso_from_nanos(time.time_ns())
