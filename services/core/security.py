"""FastAPI dependencies for authentication and declared authorization.

Handlers never check roles: they take a typed principal, e.g.
``principal: LogsRead``, and the dependency has already verified the token
(or, for ingest, the API key sent directly),
checked the credential is still active, applied the roles table and resolved
the tenant the request acts on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import httpx
from fastapi import Depends, Request

from services.core.apikeys import CHALLENGE, machine_credential
from services.core.credentials import CredentialStatus
from services.core.errors import Forbidden, Unauthorized
from services.core.principal import Principal
from services.core.rbac import Permission, allows
from services.core.tokens import JwksSource, TokenVerifier

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


async def verify_token(request_app_state: object, token: str | None) -> Principal:
    """Verify a bearer token and that its key and tenant are still active."""
    if not token:
        raise Unauthorized("Send a bearer token: 'Authorization: Bearer <token>'.")
    verifier: TokenVerifier = request_app_state.verifier  # type: ignore[attr-defined]
    # A token seen before and a credential known active cost two dict hits, no await
    # (the per-request auth check was ~7 % of a single-event ingest's CPU).
    principal = verifier.cached(token) or await verifier.verify(token)
    credentials: CredentialStatus = request_app_state.credentials  # type: ignore[attr-defined]
    if not credentials.known_active(principal):
        await credentials.ensure_active(principal)
    return principal


async def authenticate_request(request: Request, *, api_keys: bool = False) -> Principal:
    """The caller of ``request``, acting on its tenant (``X-Tenant-ID``, see Principal).

    With ``api_keys`` (ingest routes), an API key sent directly — HTTP Basic or
    ``ApiKey`` — is accepted besides a bearer token (services/core/apikeys.py).
    """
    header = request.headers.get("authorization")
    credential = machine_credential(header)
    if credential is not None:
        if not api_keys:
            raise Unauthorized(
                "An API key is accepted directly only to ingest logs; exchange it for a "
                "bearer token at /api/v1/auth/token and send 'Authorization: Bearer <token>'."
            )
        principal = await request.app.state.apikeys.authenticate(credential)
    elif api_keys and not header:
        raise Unauthorized(
            "Send a bearer token ('Authorization: Bearer <token>') or an API key "
            "(HTTP Basic with client_id:client_secret, or 'ApiKey base64(id:secret)').",
            headers=CHALLENGE,
        )
    else:
        principal = await verify_token(request.app.state, bearer_from_header(header))
    return principal.acting_on(request.headers.get("x-tenant-id"))


async def authenticate(request: Request) -> Principal:
    return await authenticate_request(request)


def require(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    # Machines (log shippers) only ever write: only ingest takes an API key directly.
    api_keys = permission == Permission.LOGS_WRITE

    async def dependency(request: Request) -> Principal:
        principal = await authenticate_request(request, api_keys=api_keys)
        if not allows(principal.role, permission):
            raise Forbidden(f"The '{principal.role}' role may not {_DESCRIPTIONS[permission]}.")
        return principal

    dependency.__name__ = f"require_{permission.value.replace(':', '_')}"
    return dependency


Authenticated = Annotated[Principal, Depends(authenticate)]
# Also called directly by the log service's direct ingest routes (services/core/direct.py).
logs_write = require(Permission.LOGS_WRITE)
LogsWrite = Annotated[Principal, Depends(logs_write)]
LogsRead = Annotated[Principal, Depends(require(Permission.LOGS_READ))]
LogsExport = Annotated[Principal, Depends(require(Permission.LOGS_EXPORT))]
LogsDelete = Annotated[Principal, Depends(require(Permission.LOGS_DELETE))]
TenantsManage = Annotated[Principal, Depends(require(Permission.TENANTS_MANAGE))]


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
