"""HTTP routes of the log service: parse, authorize (declared), call, shape the reply.

Every route is tenant-scoped: it takes a :class:`~services.core.web.security.TenantScope`
(``scope: TenantLogsRead``...), its parsed query (services/log/params.py) and the
service's objects (``log: LogService``, services/log/state.py) as dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from services.core.errors import Unavailable
from services.core.limits import Limits
from services.core.limitstore import read_usage, record_refusal
from services.core.logs.filters import LogFilter
from services.core.web.direct import DirectEndpoint
from services.core.web.disconnect import cancel_on_disconnect
from services.core.web.responses import JSONResponse
from services.core.web.security import (
    TenantAnyRole,
    TenantLogsDelete,
    TenantLogsExport,
    TenantLogsRead,
    TenantLogsWrite,
    logs_write_scope,
)
from services.core.web.state import clients
from services.log.events import MAX_EVENT_BYTES
from services.log.export import FORMATS, render
from services.log.ingest import (
    MAX_BULK_BYTES,
    ingest_bulk,
    ingest_one,
    now_iso,
    read_body,
)
from services.log.params import CleanupQuery, ExportQuery, SearchQuery, StatsQuery
from services.log.querygate import QueryRangeTooWide, check_range
from services.log.state import LogService, LogState, log_state

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])

T = TypeVar("T")


async def _limits(request: Request, log: LogState, tenant: str, flt: LogFilter) -> Limits:
    """The tenant's limits, after refusing a query wider than its time range limit."""
    limits = await log.policies.limits(tenant)
    try:
        check_range(flt, limits)
    except QueryRangeTooWide:
        redis = clients(request.app).redis
        await record_refusal(redis, log.limit_guard, tenant, "max_query_range_hours")
        raise
    return limits


async def _gated(
    request: Request, log: LogState, tenant: str, limits: Limits, query: Callable[[], Awaitable[T]]
) -> T:
    """Run a query inside the tenant's and this process's query slots; a client that
    gives up (or times out) cancels it, waiting or running, and frees its slots."""

    async def run() -> T:
        async with log.query_gate.slot(tenant, limits):
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


@router.post("", status_code=202)
async def ingest_event(request: Request, scope: TenantLogsWrite, log: LogService) -> Response:
    tenant = scope.tenant
    await log.admission.precheck(tenant)  # refused moments ago: at once
    body = await read_body(request, MAX_EVENT_BYTES, "The event")
    retention = await log.policies.retention_days(tenant)
    event_id = await ingest_one(log.batcher, tenant, body, now_iso(), retention)
    return JSONResponse({"id": event_id, "status": "accepted"}, status_code=202)


@router.post("/bulk", status_code=202)
async def ingest_events(request: Request, scope: TenantLogsWrite, log: LogService) -> Response:
    tenant = scope.tenant
    await log.admission.precheck(tenant)  # refused moments ago: at once
    body = await read_body(request, MAX_BULK_BYTES, "The request body")
    ctype = request.headers.get("content-type", "")
    retention = await log.policies.retention_days(tenant)
    ids = await ingest_bulk(log.batcher, tenant, body, ctype, now_iso(), retention)
    return JSONResponse({"accepted": len(ids), "ids": ids}, status_code=202)


async def _direct_ingest_event(request: Request) -> Response:
    return await ingest_event(request, await logs_write_scope(request), log_state(request))


async def _direct_ingest_events(request: Request) -> Response:
    return await ingest_events(request, await logs_write_scope(request), log_state(request))


# The two ingest routes, served without FastAPI's dependency solving (the hot path:
# services/core/web/direct.py); the same handlers, given what their dependencies give:
# the same tenant-scoped check (plain calls of the dependency functions).
DIRECT_ROUTES: dict[tuple[str, str], DirectEndpoint] = {
    ("POST", "/api/v1/logs"): _direct_ingest_event,
    ("POST", "/api/v1/logs/bulk"): _direct_ingest_events,
}


@router.get("")
async def search_logs(
    request: Request, scope: TenantLogsRead, params: SearchQuery, log: LogService
) -> Response:
    tenant = scope.tenant
    limits = await _limits(request, log, tenant, params.filter)
    result = await _gated(
        request,
        log,
        tenant,
        limits,
        lambda: log.repo.search(
            tenant,
            params.filter,
            descending=params.descending,
            limit=params.limit,
            cursor=params.cursor,
            page=params.page,
            with_total=params.with_total,
        ),
    )
    return JSONResponse({"data": result.items, "meta": result.meta})


@router.get("/stats")
async def log_stats(
    request: Request, scope: TenantLogsRead, params: StatsQuery, log: LogService
) -> Response:
    tenant = scope.tenant
    limits = await _limits(request, log, tenant, params.filter)
    stats = await _gated(
        request,
        log,
        tenant,
        limits,
        lambda: log.repo.stats(tenant, params.filter, by=params.by, interval=params.interval),
    )
    return JSONResponse(stats)


@router.get("/export")
async def export_logs(
    request: Request, scope: TenantLogsExport, params: ExportQuery, log: LogService
) -> Response:
    tenant, fmt, limit = scope.tenant, params.format, params.limit
    limits = await _limits(request, log, tenant, params.filter)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    filename = f"logs-{tenant}-{stamp}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    cap = limits.max_export_events
    capped = bool(cap) and (limit is None or limit > cap)
    # The slots are held until the stream ends (the response releases them).
    slots = contextlib.AsyncExitStack()

    async def prepare() -> None:
        await slots.enter_async_context(log.query_gate.slot(tenant, limits))
        if capped:
            # Cut off at the tenant's cap, and say so before the first byte (headers):
            # whether anything is cut comes from a count that stops at cap + 1.
            beyond = await log.repo.count_upto(tenant, params.filter, cap + 1)
            headers["X-Export-Limit"] = str(cap)
            headers["X-Export-Truncated"] = (
                "unknown" if beyond is None else "true" if beyond > cap else "false"
            )

    try:
        await cancel_on_disconnect(request.receive, prepare())
        events = log.repo.stream(
            tenant, params.filter, descending=params.descending, limit=cap if capped else limit
        )
        return _ExportResponse(
            render(events, fmt), media_type=FORMATS[fmt], headers=headers, release=slots.aclose
        )
    except BaseException:
        await asyncio.shield(slots.aclose())
        raise


@router.get("/usage")
async def usage(request: Request, scope: TenantAnyRole, log: LogService) -> Response:
    """The tenant's own usage and limits, for any role of the tenant."""
    tenant = scope.tenant
    limits = await log.policies.limits(tenant)
    try:
        counts = await asyncio.wait_for(read_usage(clients(request.app).redis, tenant), 2.0)
    except Exception as exc:
        raise Unavailable(
            "Usage is counted in Redis, which is not answering right now; retry shortly. "
            "(Limits are not enforced meanwhile: they fail open.)"
        ) from exc
    return JSONResponse({"tenant": tenant, **counts, "limits": limits.as_dict()})


@router.delete("/cleanup")
async def cleanup_logs(scope: TenantLogsDelete, params: CleanupQuery, log: LogService) -> Response:
    deleted = await log.repo.cleanup(
        scope.tenant,
        params.filter,
        before=params.before,
        older_than_days=params.older_than_days,
        match_all=params.match_all,
    )
    return JSONResponse({"deleted": deleted})


@router.get("/{event_id}")
async def get_log(event_id: str, scope: TenantLogsRead, log: LogService) -> Response:
    return JSONResponse(await log.repo.get(scope.tenant, event_id))
