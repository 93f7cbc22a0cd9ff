"""What the log service's OpenAPI cannot read from the route signatures.

The ingest routes (ours and the shippers') read their bodies themselves (raw
bytes: size limits, NDJSON, protobuf) and every handler answers a
``Response``, so the bodies, the answers' models and the errors their logic
raises are declared here, one :class:`RouteDoc` per route, and attached by
:func:`document` (the app factory calls it). The query parameters are the
routes' own (their dependencies).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi.routing import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.core.web.openapi import RouteDoc, describe
from services.log.events import MAX_EVENT_BYTES
from services.log.ingest import MAX_BULK_BYTES, MAX_BULK_EVENTS


class _EventFields(BaseModel):
    """The optional fields an event has as sent and as stored (core/logs/model.py)."""

    service: str | None = None
    host: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    user_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None


class LogEventIn(_EventFields):
    """An event as sent. Unknown top-level fields go to ``attributes``; common aliases
    (``severity``, ``msg``, ``@timestamp``, ``app``, …) are accepted."""

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(
        None, max_length=128, description="Yours, for idempotency; else one is made."
    )
    timestamp: str | None = Field(None, description="RFC 3339; default: when it was received.")
    level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR, CRITICAL or an alias.")
    message: str = Field(max_length=64 * 1024)


class LogEvent(_EventFields):
    """A stored event."""

    id: str
    timestamp: str
    received_at: str
    tenant_id: str
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    message: str


class IngestAccepted(BaseModel):
    id: str
    status: Literal["accepted"]


class BulkAccepted(BaseModel):
    accepted: int
    ids: list[str]


class BulkEnvelope(BaseModel):
    events: list[LogEventIn] = Field(max_length=MAX_BULK_EVENTS)


class SearchMeta(BaseModel):
    limit: int
    has_more: bool | None = None
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")
    page: int | None = None
    size: int | None = None
    total: int | None = Field(None, description="With `total=true`.")
    total_relation: Literal["eq", "gte"] | None = None


class SearchPage(BaseModel):
    data: list[LogEvent]
    meta: SearchMeta


class HistogramBucket(BaseModel):
    model_config = ConfigDict(extra="allow")

    start: str
    total: int
    counts: dict[str, int]


class Stats(BaseModel):
    by: Literal["level", "service", "action"]
    total: int
    counts: dict[str, int]
    interval: str | None = None
    histogram: list[HistogramBucket] | None = None


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")

    tenant: str
    limits: dict[str, int]


class Deleted(BaseModel):
    deleted: int


RANGE_AND_SLOTS = {
    422: "An unknown, malformed or repeated parameter (never a silent match-all).",
    429: "The tenant's query limits: concurrent queries, or a range over its limit.",
    504: "The query ran past its time limit; narrow it.",
}
INGEST_ERRORS = {
    400: "The body is not valid JSON (or NDJSON).",
    413: "Over the size limit.",
    422: "An event is invalid; nothing of the request was stored.",
    429: "The tenant's ingest rate or daily limit (with Retry-After).",
}
SHIPPER_ERRORS = {
    400: "The body cannot be decoded, or (Loki) some entries were refused.",
    413: "Over the 10 MiB body limit.",
    415: "Not one of the media types this protocol takes.",
    429: "The tenant's ingest rate or daily limit (with Retry-After).",
}
ELASTIC_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "description": "Elasticsearch's error shape, which its clients parse.",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "reason": {"type": "string"},
                        "root_cause": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "status": {"type": "integer"},
            },
            "required": ["error", "status"],
        }
    }
}
BULK_NDJSON = {"type": "string", "description": "One event (a JSON object) per line."}

DOCS: dict[tuple[str, str], RouteDoc] = {
    ("POST", "/api/v1/logs"): RouteDoc(
        summary="Ingest one event",
        description=f"202: queued, and stored exactly once. At most {MAX_EVENT_BYTES} bytes.",
        body={"application/json": LogEventIn},
        response=IngestAccepted,
        errors=INGEST_ERRORS,
    ),
    ("POST", "/api/v1/logs/bulk"): RouteDoc(
        summary="Ingest many events",
        description=f'A JSON array, `{{"events": [...]}}` or NDJSON; at most '
        f"{MAX_BULK_EVENTS} events and {MAX_BULK_BYTES} bytes. All or nothing.",
        body={
            "application/json": {
                "oneOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/LogEventIn"}},
                    {"$ref": "#/components/schemas/BulkEnvelope"},
                ]
            },
            "application/x-ndjson": BULK_NDJSON,
        },
        response=BulkAccepted,
        errors=INGEST_ERRORS,
    ),
    ("GET", "/api/v1/logs"): RouteDoc(
        summary="Search events",
        description="Filters: `level`, `min_level`, `service`, `q`, `from`, `to`, "
        "`timestamp`, `attributes.<key>` and the other event fields (exact match); "
        "paging by `cursor` or `page`/`size`.",
        response=SearchPage,
        errors=RANGE_AND_SLOTS,
    ),
    ("GET", "/api/v1/logs/stats"): RouteDoc(
        summary="Counts by level, service or action (and a histogram with `interval`)",
        response=Stats,
        errors=RANGE_AND_SLOTS,
    ),
    ("GET", "/api/v1/logs/export"): RouteDoc(
        summary="Export matching events as a file (streamed)",
        response_media={
            media: {"schema": {"type": "string"}}
            for media in ("application/x-ndjson", "application/json", "text/csv")
        },
        errors=RANGE_AND_SLOTS,
    ),
    ("GET", "/api/v1/logs/usage"): RouteDoc(
        summary="The tenant's usage today and its limits", response=Usage
    ),
    ("DELETE", "/api/v1/logs/cleanup"): RouteDoc(
        summary="Delete matching events (`before`, `older_than_days`, or `all=true`)",
        response=Deleted,
        errors={422: "No condition given, or an invalid one."},
    ),
    ("GET", "/api/v1/logs/{event_id}"): RouteDoc(
        summary="One event by id",
        response=LogEvent,
        errors={404: "No such event in this tenant (yet: the worker stores it shortly)."},
    ),
    ("POST", "/otlp/v1/logs"): RouteDoc(
        summary="OTLP/HTTP logs (ExportLogsServiceRequest)",
        body={
            "application/x-protobuf": {"type": "string", "format": "binary"},
            "application/json": {"type": "object"},
        },
        response_media={
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object"}},
        },
        errors=SHIPPER_ERRORS,
    ),
    ("POST", "/loki/api/v1/push"): RouteDoc(
        summary="Loki push (snappy protobuf or JSON PushRequest)",
        body={
            "application/x-protobuf": {"type": "string", "format": "binary"},
            "application/json": {"type": "object"},
        },
        parameters=[
            {
                "name": "X-Scope-OrgID",
                "in": "header",
                "required": False,
                "description": "The credential's own tenant (a platform admin's: the tenant).",
                "schema": {"type": "string"},
            }
        ],
        errors={**SHIPPER_ERRORS, 403: "X-Scope-OrgID names another tenant."},
    ),
}
for _method in ("POST", "PUT"):
    for _path in ("/es/_bulk", "/es/{index}/_bulk"):
        DOCS[(_method, _path)] = RouteDoc(
            summary="Elasticsearch _bulk (index/create actions, NDJSON)",
            description="Errors here are in Elasticsearch's shape, not problem+json.",
            body={"application/x-ndjson": BULK_NDJSON, "application/json": BULK_NDJSON},
            errors={400: "A malformed action or body line.", 413: "Over the 10 MiB body limit."},
            error_content=ELASTIC_ERROR,
        )
for _path in ("/es/", "/es/_cluster/health", "/es/_cat/health"):
    for _method in ("GET", "HEAD"):
        DOCS[(_method, _path)] = RouteDoc(
            summary="Elasticsearch cluster info or health (for shippers' start-up checks)",
            error_content=ELASTIC_ERROR,
        )
DOCS[("GET", "/es/_license")] = RouteDoc(
    summary="Elasticsearch license (Logstash asks at start)", error_content=ELASTIC_ERROR
)

#: Models named by DOCS (nested ones come along), for the components.
MODELS = (LogEventIn, BulkEnvelope)


def document(*routers: APIRouter) -> set[type]:
    """Attach :data:`DOCS` to the routes of ``routers``; the models they name."""
    return describe([r for router in routers for r in router.routes], DOCS) | set(MODELS)
