"""HTTP routes of the auth service: token, JWKS, forward-auth verify, me."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from fastapi.params import Depends
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from services.auth.repository import TokenIssuer, exchange_client_credentials
from services.core.apikeys import machine_credential
from services.core.errors import BadRequest, ValidationFailed, validation_errors
from services.core.principal import Principal
from services.core.responses import JSONResponse
from services.core.security import (
    Authenticated,
    bearer_from_header,
    token_from_websocket_protocols,
    verify_token,
)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
well_known = APIRouter(tags=["auth"])


class TokenRequest(BaseModel):
    grant_type: Literal["client_credentials"]
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=500)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


async def _token_request(request: Request) -> TokenRequest:
    """Accept a form or a JSON body, and HTTP Basic client authentication (RFC 6749 §2.3)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: dict[str, Any]
    if ctype == "application/json":
        # orjson, not request.json(): the stdlib parser recurses per nesting level and
        # a deeply nested body raised RecursionError (a 500); orjson stops at depth
        # 1024 with a JSONDecodeError.
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}.") from exc
        if not isinstance(data, dict):
            raise ValidationFailed("The body must be a JSON object.")
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        data = dict(await request.form())
    else:
        raise BadRequest(
            "Send the token request as application/x-www-form-urlencoded or application/json."
        )
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
        except ValueError as exc:
            raise BadRequest("The Basic authorization header is malformed.") from exc
        data.setdefault("client_id", user)
        data.setdefault("client_secret", password)
    if data.get("grant_type") not in (None, "client_credentials"):
        raise BadRequest(
            "Only grant_type=client_credentials is supported.",
        )
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors(list(exc.errors()))
        raise ValidationFailed(
            f"{errors[0]['field']}: {errors[0]['message']}", errors=errors
        ) from exc


@router.post("/token", response_model=TokenResponse)
async def issue_token(request: Request, body: Annotated[TokenRequest, Depends(_token_request)]):
    issuer: TokenIssuer = request.app.state.issuer
    db = request.app.state.clients.db
    token = await exchange_client_credentials(db, issuer, body.client_id, body.client_secret)
    return JSONResponse(token, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _jwks(request: Request) -> Response:
    max_age = request.app.state.settings.jwks_max_age_seconds
    return JSONResponse(
        request.app.state.keyring.jwks(), headers={"Cache-Control": f"public, max-age={max_age}"}
    )


@router.get("/jwks")
async def jwks(request: Request) -> Response:
    return _jwks(request)


@well_known.get("/.well-known/jwks.json")
async def well_known_jwks(request: Request) -> Response:
    return _jwks(request)


def _forwarded_token(request: Request) -> str | None:
    token = bearer_from_header(request.headers.get("authorization"))
    token = token or request.query_params.get("token")
    token = token or token_from_websocket_protocols(request.headers.get("sec-websocket-protocol"))
    original = request.headers.get("x-original-url") or request.headers.get("x-original-uri")
    if not token and original:
        token = (parse_qs(_query_of(original)).get("token") or [None])[0]
    return token


def _query_of(url: str) -> str:
    """The query of a full URL or of a path, without parsing the rest: urlsplit
    raises ValueError on a malformed host (``http://[x/``), and only the query
    matters here."""
    return url.partition("?")[2].partition("#")[0]


def _principal_body(p: Principal) -> dict[str, Any]:
    return {
        "sub": p.sub,
        "tenant": p.tenant,
        "tenant_claim": p.tenant_claim,
        "role": p.role,
        "platform_admin": p.is_platform_admin,
        "expires_at": p.expires_at,
    }


@router.get("/verify")
async def verify(request: Request) -> Response:
    """Forward-auth for the ingress: 200 with X-Auth-* headers, or 401/403 problem+json.

    An API key sent directly (Basic/ApiKey, as log shippers do) passes when it may
    ingest; the service behind still accepts it only on its ingest routes."""
    credential = machine_credential(request.headers.get("authorization"))
    if credential is not None:
        principal = await request.app.state.apikeys.authenticate(credential)
    else:
        principal = await verify_token(request.app.state, _forwarded_token(request))
    principal = principal.acting_on(request.headers.get("x-tenant-id"))
    headers = {
        "X-Auth-Sub": principal.sub,
        "X-Auth-Tenant": principal.tenant or "",
        "X-Auth-Role": principal.role,
    }
    return JSONResponse(_principal_body(principal), headers=headers)


@router.get("/me")
async def me(principal: Authenticated) -> Response:
    return JSONResponse(_principal_body(principal))
