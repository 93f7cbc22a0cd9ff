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

from services.auth.repository import exchange_client_credentials
from services.auth.state import AuthService, AuthState
from services.core.apikeys import machine_credential
from services.core.errors import BadRequest, ValidationFailed, validation_errors
from services.core.principal import Principal
from services.core.web.openapi import REF, problem_response
from services.core.web.responses import JSONResponse
from services.core.web.security import (
    Authenticated,
    bearer_from_header,
    token_from_websocket_protocols,
    verify_token,
)
from services.core.web.state import apikeys, clients

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


class PrincipalOut(BaseModel):
    sub: str
    tenant: str | None = Field(description="The tenant it acts on (null: none named yet).")
    tenant_claim: str | None
    role: str
    platform_admin: bool
    expires_at: int = Field(description="Unix time the token expires.")


class Jwks(BaseModel):
    keys: list[dict[str, Any]] = Field(description="RFC 7517 public keys (RS256).")


# _token_request reads the body itself (form or JSON, RFC 6749 §2.3 Basic too).
TOKEN_BODY = {
    "requestBody": {
        "required": True,
        "description": "client_id and client_secret may come as HTTP Basic instead.",
        "content": {
            media: {"schema": {"$ref": REF + "TokenRequest"}}
            for media in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


@router.post(
    "/token",
    response_model=TokenResponse,
    openapi_extra={**TOKEN_BODY, "security": []},
    responses={
        400: problem_response(400, "Not a client-credentials request, or a malformed body."),
        401: problem_response(401, "Unknown client, wrong secret, revoked key, disabled tenant."),
        422: problem_response(422, "A field is missing or invalid."),
    },
)
async def issue_token(
    request: Request, body: Annotated[TokenRequest, Depends(_token_request)], auth: AuthService
):
    db = clients(request.app).db
    token = await exchange_client_credentials(db, auth.issuer, body.client_id, body.client_secret)
    return JSONResponse(token, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _jwks(auth: AuthState) -> Response:
    max_age = auth.settings.jwks_max_age_seconds
    return JSONResponse(
        auth.keyring.jwks(), headers={"Cache-Control": f"public, max-age={max_age}"}
    )


@router.get("/jwks", response_model=Jwks)
async def jwks(auth: AuthService) -> Response:
    return _jwks(auth)


@well_known.get("/.well-known/jwks.json", response_model=Jwks)
async def well_known_jwks(auth: AuthService) -> Response:
    return _jwks(auth)


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


@router.get(
    "/verify",
    response_model=PrincipalOut,
    openapi_extra={"security": [{"bearer": []}, {"basic": []}, {"apiKey": []}]},
    responses={
        401: problem_response(401, "No credential, or an invalid one."),
        403: problem_response(403, "The credential may not act on X-Tenant-ID."),
    },
)
async def verify(request: Request) -> Response:
    """Forward-auth for the ingress: 200 with X-Auth-* headers, or 401/403 problem+json.

    An API key sent directly (Basic/ApiKey, as log shippers do) passes when it may
    ingest; the service behind still accepts it only on its ingest routes."""
    credential = machine_credential(request.headers.get("authorization"))
    if credential is not None:
        principal = await apikeys(request.app).authenticate(credential)
    else:
        principal = await verify_token(request.app, _forwarded_token(request))
    principal = principal.acting_on(request.headers.get("x-tenant-id"))
    headers = {
        "X-Auth-Sub": principal.sub,
        "X-Auth-Tenant": principal.tenant or "",
        "X-Auth-Role": principal.role,
    }
    return JSONResponse(_principal_body(principal), headers=headers)


@router.get("/me", response_model=PrincipalOut)
async def me(principal: Authenticated) -> Response:
    return JSONResponse(_principal_body(principal))
