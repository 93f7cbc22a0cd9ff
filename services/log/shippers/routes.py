"""HTTP glue of the shipper protocols: authorize, read, decode, ingest per record, reply.

Every endpoint takes ``TenantLogsWrite`` (a bearer token, or an API key sent directly
as HTTP Basic or ``ApiKey``) and goes the way of our own bulk ingest:
``normalize`` each record, then the batcher and SQS (``ingest_records``). The
tenant is always the credential's; a platform-admin key names it with
``X-Tenant-ID`` (or, for Loki, ``X-Scope-OrgID``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from services.core.errors import (
    BadRequest,
    Forbidden,
    LogServerError,
    NotFound,
    UnsupportedMediaType,
)
from services.core.principal import Principal
from services.core.web.responses import JSONResponse
from services.core.web.security import LogsWrite, TenantLogsWrite, scope_to_tenant
from services.log.ingest import MAX_BULK_BYTES, Refused, ingest_records, now_iso, read_body
from services.log.shippers import elastic, loki, otlp
from services.log.state import LogService, LogState

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ELASTIC_PRODUCT = {"X-Elastic-Product": "Elasticsearch"}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _acting_on_org(principal: Principal, org_id: str | None) -> Principal:
    """Loki's ``X-Scope-OrgID`` may only repeat the credential's own tenant; a platform
    admin may use it to name the tenant (as with X-Tenant-ID, and not a different one)."""
    org_id = (org_id or "").strip()
    if not org_id:
        return principal
    if not principal.is_platform_admin:
        if org_id != principal.tenant_claim:
            raise Forbidden(
                f"This credential belongs to tenant '{principal.tenant_claim}'; X-Scope-OrgID "
                f"'{org_id}' names another. The tenant is always the credential's."
            )
        return principal
    if principal.tenant not in (None, org_id):
        raise BadRequest("X-Tenant-ID and X-Scope-OrgID name different tenants.")
    return principal.acting_on(org_id)


async def _ingest(log: LogState, tenant: str, raws: list[Any]) -> list[str | Refused]:
    retention_days = await log.policies.retention_days(tenant)
    return await ingest_records(log.batcher, tenant, raws, now_iso(), retention_days)


def _refused(outcomes: list[str | Refused]) -> list[str]:
    return [o.reason for o in outcomes if isinstance(o, Refused)]


async def _body(request: Request) -> bytes:
    return await read_body(request, MAX_BULK_BYTES, "The request body")


# --- OTLP/HTTP ---------------------------------------------------------------------------

otlp_router = APIRouter(prefix="/otlp/v1", tags=["shippers"])


@otlp_router.post("/logs")
async def otlp_logs(request: Request, scope: TenantLogsWrite, log: LogService) -> Response:
    """ExportLogsServiceRequest (protobuf or JSON) → ExportLogsServiceResponse, same encoding."""
    tenant = scope.tenant
    media = _media_type(request)
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(f"Send OTLP as {PROTOBUF} or {JSON}, not '{media}'.")
    body = await _body(request)
    message = otlp.decode_protobuf(body) if media == PROTOBUF else otlp.decode_json(body)
    outcomes = await _ingest(log, tenant, otlp.to_raw_events(message))
    return Response(otlp.response(_refused(outcomes), media == JSON), media_type=media)


# --- Loki push -----------------------------------------------------------------------------

loki_router = APIRouter(prefix="/loki/api/v1", tags=["shippers"])


@loki_router.post("/push", status_code=204)
async def loki_push(request: Request, principal: LogsWrite, log: LogService) -> Response:
    """Snappy protobuf or JSON PushRequest → 204; 400 naming the entries refused (as Loki
    does, the valid entries of the push are kept)."""
    principal = _acting_on_org(principal, request.headers.get("x-scope-orgid"))
    tenant = (await scope_to_tenant(request, principal)).tenant
    media = _media_type(request)
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(f"Send a Loki push as {PROTOBUF} (snappy) or {JSON}.")
    body = await _body(request)
    if media == PROTOBUF:
        raws = loki.decode_protobuf(body, MAX_BULK_BYTES)
    else:
        raws = loki.decode_json(body)
    refused = _refused(await _ingest(log, tenant, raws))
    if refused:
        raise BadRequest(
            f"{len(refused)} of {len(raws)} entries refused (the others were accepted); "
            f"first: {refused[0]}"
        )
    return Response(status_code=204)


# --- Elasticsearch -------------------------------------------------------------------------


class ElasticRoute(APIRoute):
    """Every reply of ``/es`` carries ``X-Elastic-Product`` (official clients refuse a
    server without it), and errors, those of authentication included, come in
    Elasticsearch's shape, which its clients parse."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def elastic_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LogServerError as exc:
                response = JSONResponse(
                    elastic.error_body(exc.status, exc.detail),
                    status_code=exc.status,
                    headers=exc.headers,
                )
            response.headers.update(ELASTIC_PRODUCT)
            return response

        return elastic_handler


es_router = APIRouter(prefix="/es", tags=["shippers"], route_class=ElasticRoute)


@es_router.api_route("", methods=["GET", "HEAD"], include_in_schema=False)
@es_router.api_route("/", methods=["GET", "HEAD"])
async def es_info(request: Request, scope: TenantLogsWrite) -> Response:
    """Cluster info: an 8.x version (clients and shippers check it). Authorized like
    ingest (``scope``): a shipper learns here that its key and tenant are good."""
    if request.method == "HEAD":
        return Response(status_code=200)
    return JSONResponse(elastic.cluster_info())


@es_router.api_route("/_cluster/health", methods=["GET", "HEAD"])
@es_router.api_route("/_cat/health", methods=["GET", "HEAD"])
async def es_health(request: Request, scope: TenantLogsWrite) -> Response:
    """The health checks of Vector (``_cluster/health``) and rsyslog (``_cat/health``)."""
    if request.method == "HEAD":
        return Response(status_code=200)
    return JSONResponse(elastic.cluster_health())


@es_router.get("/_license")
async def es_license(scope: TenantLogsWrite) -> Response:
    """Logstash asks for the license at start; a basic, active one."""
    return JSONResponse({"license": {"status": "active", "type": "basic", "uid": "logserver"}})


@es_router.api_route("/_bulk", methods=["POST", "PUT"])
@es_router.api_route("/{index}/_bulk", methods=["POST", "PUT"])
async def es_bulk(
    request: Request, scope: TenantLogsWrite, log: LogService, index: str | None = None
) -> Response:
    """NDJSON ``index``/``create`` actions → the bulk response, a status per item."""
    started = time.monotonic()
    items = elastic.parse_bulk(await _body(request), index)
    outcomes = await _ingest(log, scope.tenant, [item.raw for item in items])
    return JSONResponse(elastic.bulk_response(items, outcomes, started))


@es_router.api_route(
    "/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"],
    include_in_schema=False,
)
async def es_other(request: Request, path: str) -> Response:
    """Everything else of the Elasticsearch API: not here (an ES-shaped 404)."""
    raise NotFound(
        f"{request.method} /{path} is not supported: this endpoint takes _bulk ingest only."
    )
