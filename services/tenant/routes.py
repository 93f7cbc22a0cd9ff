"""HTTP routes of the tenant service: thin wrappers over :class:`TenantRepository`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from services.core.web.openapi import problem_response
from services.core.web.responses import JSONResponse
from services.core.web.security import TenantsManage
from services.tenant.repository import TenantRepository, key_out
from services.tenant.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    TenantCreate,
    TenantOut,
    TenantPage,
    TenantUpdate,
)
from services.tenant.state import tenant_repository

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])

# The errors the store answers (services/tenant/repository.py), for the OpenAPI document.
NO_TENANT = {404: problem_response(404, "No such tenant (or API key).")}
EXISTS = {409: problem_response(409, "A tenant with this key already exists.")}


def _store(request: Request) -> TenantRepository:
    return tenant_repository(request)


@router.post("", status_code=201, response_model=TenantOut, responses=EXISTS)
async def create_tenant(request: Request, body: TenantCreate, principal: TenantsManage):
    store = _store(request)
    doc = await store.create(principal, body)
    return JSONResponse(
        store.out(doc), status_code=201, headers={"Location": f"/api/v1/tenants/{doc['_id']}"}
    )


@router.get("", response_model=TenantPage)
async def list_tenants(
    request: Request,
    principal: TenantsManage,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    store = _store(request)
    docs, total = await store.list(principal, limit=limit, offset=offset)
    meta = {"total": total, "limit": limit, "offset": offset}
    return JSONResponse({"data": [store.out(d) for d in docs], "meta": meta})


@router.get("/{key}", response_model=TenantOut, responses=NO_TENANT)
async def get_tenant(request: Request, key: str, principal: TenantsManage):
    store = _store(request)
    return JSONResponse(store.out(await store.get(principal, key)))


@router.patch("/{key}", response_model=TenantOut, responses=NO_TENANT)
async def update_tenant(request: Request, key: str, body: TenantUpdate, principal: TenantsManage):
    store = _store(request)
    return JSONResponse(store.out(await store.update(principal, key, body)))


@router.delete("/{key}", response_model=TenantOut, responses=NO_TENANT)
async def disable_tenant(request: Request, key: str, principal: TenantsManage):
    """Disables the tenant (its data stays); its tokens stop working."""
    store = _store(request)
    return JSONResponse(store.out(await store.disable(principal, key)))


@router.post("/{key}/api-keys", status_code=201, response_model=ApiKeyCreated, responses=NO_TENANT)
async def create_api_key(request: Request, key: str, body: ApiKeyCreate, principal: TenantsManage):
    doc, secret = await _store(request).create_key(principal, key, body)
    out = {**key_out(doc), "client_id": doc["_id"], "client_secret": secret}
    return JSONResponse(out, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/{key}/api-keys", response_model=ApiKeyList, responses=NO_TENANT)
async def list_api_keys(request: Request, key: str, principal: TenantsManage) -> Response:
    docs = await _store(request).list_keys(principal, key)
    return JSONResponse({"data": [key_out(d) for d in docs], "meta": {"total": len(docs)}})


@router.delete("/{key}/api-keys/{key_id}", status_code=204, responses=NO_TENANT)
async def revoke_api_key(
    request: Request, key: str, key_id: str, principal: TenantsManage
) -> Response:
    await _store(request).revoke_key(principal, key, key_id)
    return Response(status_code=204)
