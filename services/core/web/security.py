"""FastAPI dependencies for authentication, declared authorization and tenancy.

Handlers never check roles: they take a typed principal, e.g.
``principal: LogsRead``, and the dependency has already verified the token
(or, for ingest, the API key sent directly),
checked the credential is still active, applied the roles table and resolved
the tenant the request acts on. A tenant-scoped handler (logs) takes a
:class:`TenantScope` instead, e.g. ``scope: TenantLogsRead``: the same checks, and
the tenant it acts on, a platform admin's named tenant checked to exist and be
active. The dependencies take any connection, so the live tail (a WebSocket)
and the direct ingest routes (services/core/web/direct.py) call the same functions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends
from fastapi.dependencies.models import Dependant
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from services.core.apikeys import CHALLENGE, machine_credential
from services.core.errors import Forbidden, Unauthorized
from services.core.principal import Principal
from services.core.rbac import Permission, allows
from services.core.tokens import JwksSource
from services.core.web.state import apikeys, credentials, verifier

NO_WEBSOCKET_TOKEN = (
    "Send a bearer token: as the `?token=<token>` query parameter or as "
    "`Sec-WebSocket-Protocol: bearer, <token>` (both work in a browser, which cannot "
    "set headers on a WebSocket), or in an `Authorization: Bearer <token>` header."
)
_DESCRIPTIONS = {
    Permission.LOGS_WRITE: "ingest logs",
    Permission.LOGS_READ: "read logs",
    Permission.LOGS_EXPORT: "export logs",
    Permission.LOGS_DELETE: "delete logs",
    Permission.TENANTS_MANAGE: "manage tenants and API keys",
}


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def http_jwks_source(client: httpx.AsyncClient, auth_url: str) -> JwksSource:
    url = auth_url.rstrip("/") + "/api/v1/auth/jwks"

    async def fetch() -> dict:
        resp = await client.get(url, timeout=5)
        resp.raise_for_status()
        return resp.json()

    return fetch


async def verify_token(app: Starlette, token: str | None) -> Principal:
    """Verify a bearer token and that its key and tenant are still active."""
    if not token:
        raise Unauthorized("Send a bearer token: 'Authorization: Bearer <token>'.")
    # A token seen before and a credential known active cost two dict hits, no await
    # (the per-request auth check was ~7 % of a single-event ingest's CPU).
    tokens = verifier(app)
    principal = tokens.cached(token) or await tokens.verify(token)
    status = credentials(app)
    if not status.known_active(principal):
        await status.ensure_active(principal)
    return principal


async def _authenticate_websocket(conn: HTTPConnection) -> Principal:
    # Browsers cannot set headers on a WebSocket: the token may ride in the query or
    # the subprotocol, and the tenant in the query. Only bearer tokens: no API keys.
    token = (
        bearer_from_header(conn.headers.get("authorization"))
        or conn.query_params.get("token")
        or token_from_websocket_protocols(conn.headers.get("sec-websocket-protocol"))
    )
    if not token:
        raise Unauthorized(NO_WEBSOCKET_TOKEN)
    principal = await verify_token(conn.app, token)
    return principal.acting_on(conn.headers.get("x-tenant-id") or conn.query_params.get("tenant"))


async def authenticate_request(conn: HTTPConnection, *, api_keys: bool = False) -> Principal:
    """The caller of ``conn``, acting on its tenant (``X-Tenant-ID``, see Principal).

    With ``api_keys`` (ingest routes), an API key sent directly — HTTP Basic or
    ``ApiKey`` — is accepted besides a bearer token (services/core/apikeys.py).
    A WebSocket may also send its token and tenant in the query (``token``, ``tenant``).
    """
    if conn.scope["type"] == "websocket":
        return await _authenticate_websocket(conn)
    header = conn.headers.get("authorization")
    credential = machine_credential(header)
    if credential is not None:
        if not api_keys:
            raise Unauthorized(
                "An API key is accepted directly only to ingest logs; exchange it for a "
                "bearer token at /api/v1/auth/token and send 'Authorization: Bearer <token>'."
            )
        principal = await apikeys(conn.app).authenticate(credential)
    elif api_keys and not header:
        raise Unauthorized(
            "Send a bearer token ('Authorization: Bearer <token>') or an API key "
            "(HTTP Basic with client_id:client_secret, or 'ApiKey base64(id:secret)').",
            headers=CHALLENGE,
        )
    else:
        principal = await verify_token(conn.app, bearer_from_header(header))
    return principal.acting_on(conn.headers.get("x-tenant-id"))


async def authenticate(conn: HTTPConnection) -> Principal:
    return await authenticate_request(conn)


#: The OpenAPI security schemes of the credentials ``authenticate_request`` takes.
SCHEMES: dict[str, dict[str, str]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /api/v1/auth/token (client credentials).",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "An API key sent directly, client_id:client_secret (ingest routes only).",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "An API key sent directly as `ApiKey base64(client_id:client_secret)`, "
        "as Elasticsearch clients do (ingest routes only).",
    },
}
BEARER_ONLY = ("bearer",)
INGEST = ("bearer", "basic", "apiKey")
# Which schemes each authenticating dependency accepts, for the OpenAPI document.
_SCHEMES_OF: dict[Callable[..., Any], tuple[str, ...]] = {authenticate: BEARER_ONLY}


def auth_schemes(dependant: Dependant) -> tuple[str, ...]:
    """The security schemes a route's dependencies accept (none: it is public)."""
    for dep in dependant.dependencies:
        found = _SCHEMES_OF.get(dep.call) if dep.call is not None else None
        if found is None:
            found = auth_schemes(dep) or None
        if found:
            return found
    return ()


def require(permission: Permission) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    # Machines (log shippers) only ever write: only ingest takes an API key directly.
    api_keys = permission == Permission.LOGS_WRITE

    async def dependency(conn: HTTPConnection) -> Principal:
        principal = await authenticate_request(conn, api_keys=api_keys)
        if not allows(principal.role, permission):
            raise Forbidden(f"The '{principal.role}' role may not {_DESCRIPTIONS[permission]}.")
        return principal

    dependency.__name__ = f"require_{permission.value.replace(':', '_')}"
    _SCHEMES_OF[dependency] = INGEST if api_keys else BEARER_ONLY
    return dependency


@dataclass(frozen=True, slots=True)
class TenantScope:
    """A tenant-scoped call: who calls, and the one tenant it acts on."""

    principal: Principal
    tenant: str


async def scope_to_tenant(conn: HTTPConnection, principal: Principal) -> TenantScope:
    """The tenant ``principal`` acts on; a platform admin must name one that exists and
    is active (any other token's own tenant was checked with its key)."""
    tenant = principal.require_tenant()
    if principal.is_platform_admin:
        await credentials(conn.app).ensure_tenant(tenant)
    return TenantScope(principal, tenant)


def tenant_scoped(
    permission: Permission | None,
) -> Callable[[HTTPConnection], Awaitable[TenantScope]]:
    """A dependency: the caller (holding ``permission``; any role for None) and its tenant."""
    check = authenticate if permission is None else require(permission)

    async def dependency(conn: HTTPConnection) -> TenantScope:
        return await scope_to_tenant(conn, await check(conn))

    dependency.__name__ = f"scope_{check.__name__}"
    _SCHEMES_OF[dependency] = _SCHEMES_OF[check]  # it calls check itself, not as a dependency
    return dependency


Authenticated = Annotated[Principal, Depends(authenticate)]
LogsWrite = Annotated[Principal, Depends(require(Permission.LOGS_WRITE))]
LogsRead = Annotated[Principal, Depends(require(Permission.LOGS_READ))]
LogsExport = Annotated[Principal, Depends(require(Permission.LOGS_EXPORT))]
LogsDelete = Annotated[Principal, Depends(require(Permission.LOGS_DELETE))]
TenantsManage = Annotated[Principal, Depends(require(Permission.TENANTS_MANAGE))]

# Tenant-scoped: the principal and the tenant it acts on.
# Also called directly: by the log service's direct ingest routes (services/core/web/direct.py)
# and, once it has accepted the connection, by the live tail (errors become close frames).
logs_write_scope = tenant_scoped(Permission.LOGS_WRITE)
logs_read_scope = tenant_scoped(Permission.LOGS_READ)
TenantLogsWrite = Annotated[TenantScope, Depends(logs_write_scope)]
TenantLogsRead = Annotated[TenantScope, Depends(logs_read_scope)]
TenantLogsExport = Annotated[TenantScope, Depends(tenant_scoped(Permission.LOGS_EXPORT))]
TenantLogsDelete = Annotated[TenantScope, Depends(tenant_scoped(Permission.LOGS_DELETE))]
TenantAnyRole = Annotated[TenantScope, Depends(tenant_scoped(None))]


def token_from_websocket_protocols(header: str | None) -> str | None:
    """Browsers cannot set headers on a WebSocket, so a token may ride in
    ``Sec-WebSocket-Protocol: bearer, <token>`` (or ``bearer.<token>``)."""
    if not header:
        return None
    items = [p.strip() for p in header.split(",") if p.strip()]
    for i, item in enumerate(items):
        if item.lower() == "bearer" and i + 1 < len(items):
            return items[i + 1]
        if item.lower().startswith("bearer."):
            return item[len("bearer.") :]
    return None
