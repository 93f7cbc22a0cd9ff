"""HTTP routes of the log service: parse, authorize (declared), call, shape the reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from services.core.direct import DirectEndpoint
from services.core.disconnect import cancel_on_disconnect
from services.core.errors import Unavailable, ValidationFailed
from services.core.limits import Limits
from services.core.limitstore import read_usage, record_refusal
from services.core.logfilters import LogFilter, ParsedParams, parse_params, parse_time
from services.core.principal import Principal
from services.core.responses import JSONResponse
from services.core.security import (
    Authenticated,
    LogsDelete,
    LogsExport,
    LogsRead,
    LogsWrite,
    logs_write,
)
from services.log.events import MAX_EVENT_BYTES
from services.log.export import FORMATS, render
from services.log.ingest import (
    MAX_BULK_BYTES,
    ingest_bulk,
    ingest_one,
    now_iso,
    read_body,
)
from services.log.querygate import QueryGate, QueryRangeTooWide, check_range
from services.log.repository import INTERVALS, STATS_BY, LogRepository

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])

SEARCH_OPTIONS = frozenset({"sort", "limit", "cursor", "page", "size", "total"})
STATS_OPTIONS = frozenset({"by", "interval"})
EXPORT_OPTIONS = frozenset({"format", "sort", "limit"})
CLEANUP_OPTIONS = frozenset({"before", "older_than_days", "all"})


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


def _int(opts: dict[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    if name not in opts:
        return default
    try:
        value = int(opts[name])
    except ValueError:
        raise _invalid(name, "must be a whole number") from None
    if not lo <= value <= hi:
        raise _invalid(name, f"must be between {lo} and {hi}")
    return value


def _bool(opts: dict[str, str], name: str) -> bool:
    value = opts.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise _invalid(name, "must be true or false")
    return value in ("true", "1")


def _descending(opts: dict[str, str]) -> bool:
    sort = opts.get("sort", "desc").lower()
    if sort not in ("asc", "desc"):
        raise _invalid("sort", "must be asc or desc")
    return sort == "desc"


def _params(request: Request, options: frozenset[str]) -> ParsedParams:
    return parse_params(request.query_params.multi_items(), options)


async def _tenant(request: Request, principal: Principal) -> str:
    tenant = principal.require_tenant()
    if principal.is_platform_admin:
        await request.app.state.credentials.ensure_tenant(tenant)
    return tenant


def _repo(request: Request) -> LogRepository:
    return request.app.state.repo


T = TypeVar("T")


async def _limits(request: Request, tenant: str, flt: LogFilter) -> Limits:
    """The tenant's limits, after refusing a query wider than its time range limit."""
    limits: Limits = await request.app.state.policies.limits(tenant)
    try:
        check_range(flt, limits)
    except QueryRangeTooWide:
        state = request.app.state
        await record_refusal(
            state.clients.redis, state.limit_guard, tenant, "max_query_range_hours"
        )
        raise
    return limits


async def _gated(
    request: Request, tenant: str, limits: Limits, query: Callable[[], Awaitable[T]]
) -> T:
    """Run a query inside the tenant's and this process's query slots; a client that
    gives up (or times out) cancels it, waiting or running, and frees its slots."""
    gate: QueryGate = request.app.state.query_gate

    async def run() -> T:
        async with gate.slot(tenant, limits):
            return await query()

    return await cancel_on_disconnect(request.receive, run())


class _ExportResponse(StreamingResponse):
    """A streamed export that gives its query slots back when the stream ends, however
    it ends (sent, failed, or cancelled because the client left)."""

    def __init__(
        self,
        content: AsyncIterator[str | bytes],
        *,
        release: Callable[[], Awaitable[object]],
        **kw: Any,
    ) -> None:
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


async def _retention_days(request: Request, tenant: str) -> int:
    return await request.app.state.policies.retention_days(tenant)


@router.post("", status_code=202)
async def ingest_event(request: Request, principal: LogsWrite) -> Response:
    tenant = await _tenant(request, principal)
    await request.app.state.admission.precheck(tenant)  # refused moments ago: at once
    body = await read_body(request, MAX_EVENT_BYTES, "The event")
    retention = await _retention_days(request, tenant)
    event_id = await ingest_one(request.app.state.batcher, tenant, body, now_iso(), retention)
    return JSONResponse({"id": event_id, "status": "accepted"}, status_code=202)


@router.post("/bulk", status_code=202)
async def ingest_events(request: Request, principal: LogsWrite) -> Response:
    tenant = await _tenant(request, principal)
    await request.app.state.admission.precheck(tenant)  # refused moments ago: at once
    body = await read_body(request, MAX_BULK_BYTES, "The request body")
    ctype = request.headers.get("content-type", "")
    retention = await _retention_days(request, tenant)
    ids = await ingest_bulk(request.app.state.batcher, tenant, body, ctype, now_iso(), retention)
    return JSONResponse({"accepted": len(ids), "ids": ids}, status_code=202)


async def _direct_ingest_event(request: Request) -> Response:
    return await ingest_event(request, await logs_write(request))


async def _direct_ingest_events(request: Request) -> Response:
    return await ingest_events(request, await logs_write(request))


# The two ingest routes, served without FastAPI's dependency solving (the hot path:
# services/core/direct.py); the same handlers, the same LogsWrite check.
DIRECT_ROUTES: dict[tuple[str, str], DirectEndpoint] = {
    ("POST", "/api/v1/logs"): _direct_ingest_event,
    ("POST", "/api/v1/logs/bulk"): _direct_ingest_events,
}


@router.get("")
async def search_logs(request: Request, principal: LogsRead) -> Response:
    parsed = _params(request, SEARCH_OPTIONS)
    opts = parsed.options
    tenant = await _tenant(request, principal)
    if "cursor" in opts and ("page" in opts or "size" in opts):
        raise _invalid("cursor", "use either cursor or page/size, not both")
    limit = _int(opts, "size" if "size" in opts else "limit", 50, 0, 1000)
    page = _int(opts, "page", None, 1, 1_000_000)
    if "size" in opts and page is None:
        page = 1
    descending, with_total = _descending(opts), _bool(opts, "total")
    if limit == 0 and ("size" in opts or not with_total or "cursor" in opts):
        # A count alone: no page is read (on FerretDB reading one is a scan of its own).
        raise _invalid("limit", "0 only counts: give it with total=true, without cursor/page")
    limits = await _limits(request, tenant, parsed.filter)
    result = await _gated(
        request,
        tenant,
        limits,
        lambda: _repo(request).search(
            tenant,
            parsed.filter,
            descending=descending,
            limit=50 if limit is None else limit,
            cursor=opts.get("cursor"),
            page=page,
            with_total=with_total,
        ),
    )
    return JSONResponse({"data": result.items, "meta": result.meta})


@router.get("/stats")
async def log_stats(request: Request, principal: LogsRead) -> Response:
    parsed = _params(request, STATS_OPTIONS)
    tenant = await _tenant(request, principal)
    by = parsed.options.get("by", "level")
    if by not in STATS_BY:
        raise _invalid("by", f"must be one of {', '.join(STATS_BY)}")
    interval = parsed.options.get("interval")
    if interval is not None and interval not in INTERVALS:
        raise _invalid("interval", f"must be one of {', '.join(INTERVALS)}")
    limits = await _limits(request, tenant, parsed.filter)
    stats = await _gated(
        request,
        tenant,
        limits,
        lambda: _repo(request).stats(tenant, parsed.filter, by=by, interval=interval),
    )
    return JSONResponse(stats)


@router.get("/export")
async def export_logs(request: Request, principal: LogsExport) -> Response:
    parsed = _params(request, EXPORT_OPTIONS)
    tenant = await _tenant(request, principal)
    fmt = parsed.options.get("format", "ndjson")
    if fmt not in FORMATS:
        raise _invalid("format", f"must be one of {', '.join(FORMATS)}")
    limit = _int(parsed.options, "limit", None, 1, 100_000_000)
    descending = _descending(parsed.options)
    limits = await _limits(request, tenant, parsed.filter)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    filename = f"logs-{tenant}-{stamp}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    gate: QueryGate = request.app.state.query_gate
    cap = limits.max_export_events
    capped = bool(cap) and (limit is None or limit > cap)
    # The slots are held until the stream ends (the response releases them).
    slots = contextlib.AsyncExitStack()

    async def prepare() -> None:
        await slots.enter_async_context(gate.slot(tenant, limits))
        if capped:
            # Cut off at the tenant's cap, and say so before the first byte (headers):
            # whether anything is cut comes from a count that stops at cap + 1.
            beyond = await _repo(request).count_upto(tenant, parsed.filter, cap + 1)
            headers["X-Export-Limit"] = str(cap)
            headers["X-Export-Truncated"] = (
                "unknown" if beyond is None else "true" if beyond > cap else "false"
            )

    try:
        await cancel_on_disconnect(request.receive, prepare())
        events = _repo(request).stream(
            tenant, parsed.filter, descending=descending, limit=cap if capped else limit
        )
        return _ExportResponse(
            render(events, fmt), media_type=FORMATS[fmt], headers=headers, release=slots.aclose
        )
    except BaseException:
        await asyncio.shield(slots.aclose())
        raise


@router.get("/usage")
async def usage(request: Request, principal: Authenticated) -> Response:
    """The tenant's own usage and limits, for any role of the tenant."""
    tenant = await _tenant(request, principal)
    limits: Limits = await request.app.state.policies.limits(tenant)
    try:
        counts = await asyncio.wait_for(read_usage(request.app.state.clients.redis, tenant), 2.0)
    except Exception as exc:
        raise Unavailable(
            "Usage is counted in Redis, which is not answering right now; retry shortly. "
            "(Limits are not enforced meanwhile: they fail open.)"
        ) from exc
    return JSONResponse({"tenant": tenant, **counts, "limits": limits.as_dict()})


@router.delete("/cleanup")
async def cleanup_logs(request: Request, principal: LogsDelete) -> Response:
    parsed = _params(request, CLEANUP_OPTIONS)
    tenant = await _tenant(request, principal)
    opts = parsed.options
    before = parse_time("before", opts["before"]) if "before" in opts else None
    deleted = await _repo(request).cleanup(
        tenant,
        parsed.filter,
        before=before,
        older_than_days=_int(opts, "older_than_days", None, 0, 36500),
        match_all=_bool(opts, "all"),
    )
    return JSONResponse({"deleted": deleted})


@router.get("/{event_id}")
async def get_log(request: Request, event_id: str, principal: LogsRead) -> Response:
    tenant = await _tenant(request, principal)
    return JSONResponse(await _repo(request).get(tenant, event_id))
