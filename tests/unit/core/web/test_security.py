"""Extracting bearer tokens, and the declared-authorization dependencies."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message
from starlette.websockets import WebSocket

from services.core.apikeys import MachineCredential
from services.core.errors import BadRequest, Forbidden, LogServerError, NotFound, Unauthorized
from services.core.principal import Principal
from services.core.web.app import install_error_handlers
from services.core.web.security import (
    Authenticated,
    LogsExport,
    LogsWrite,
    TenantLogsRead,
    bearer_from_header,
    logs_read_scope,
    token_from_websocket_protocols,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc  ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer    ", None),
        ("Basic dXNlcjpwdw==", None),
        ("Token abc", None),
        ("Bearerabc", None),
    ],
)
def test_bearer_from_header(header: str | None, expected: str | None) -> None:
    assert bearer_from_header(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bearer, TOKEN", "TOKEN"),
        ("bearer,TOKEN", "TOKEN"),
        ("Bearer, a.b.c", "a.b.c"),
        ("bearer.TOKEN", "TOKEN"),
        ("bearer.a.b.c", "a.b.c"),
        ("Bearer.a.b.c", "a.b.c"),
        ("logserver.v1, bearer, TOK", "TOK"),
        ("logserver.v1, bearer.TOK", "TOK"),
        (None, None),
        ("", None),
        ("bearer", None),
        ("bearer, ", None),
        ("logserver.v1", None),
        ("TOKEN", None),
    ],
)
def test_token_from_websocket_protocols(header: str | None, expected: str | None) -> None:
    assert token_from_websocket_protocols(header) == expected


# --- the dependencies, through a tiny app ------------------------------------------


class FakeVerifier:
    def cached(self, token: str) -> Principal | None:
        return None  # always the awaited path

    def __init__(self, tokens: dict[str, Principal]) -> None:
        self.tokens = tokens

    async def verify(self, token: str) -> Principal:
        try:
            return self.tokens[token]
        except KeyError:
            raise Unauthorized("bad token") from None


class FakeCredentials:
    def known_active(self, principal: Principal) -> bool:
        return False  # always the awaited path

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.checked: list[str] = []

    async def ensure_active(self, principal: Principal) -> None:
        self.checked.append(principal.sub)
        if principal.sub in self.revoked:
            raise Unauthorized("revoked")

    async def ensure_tenant(self, tenant: str) -> None:
        if tenant not in ("acme", "globex"):
            raise NotFound(f"No tenant '{tenant}'.")


class FakeApiKeys:
    """Accepts ``key-writer:pw`` (tenant acme) and ``key-admin:pw`` (platform admin)."""

    async def authenticate(self, credential: MachineCredential) -> Principal:
        if credential.secret != "pw" or credential.client_id not in ("key-writer", "key-admin"):
            raise Unauthorized("bad key")
        if credential.client_id == "key-admin":
            return Principal("key-admin", "*", "admin", "", 0)
        return Principal("key-writer", "acme", "writer", "", 0)


def _p(sub: str, tenant: str, role: str) -> Principal:
    return Principal(sub=sub, tenant_claim=tenant, role=role, jti="j", expires_at=2**31)


@pytest.fixture
def creds() -> FakeCredentials:
    return FakeCredentials()


@pytest.fixture
def app(creds: FakeCredentials) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.verifier = FakeVerifier(
        {
            "t-viewer": _p("k-viewer", "acme", "viewer"),
            "t-auditor": _p("k-auditor", "acme", "auditor"),
            "t-admin": _p("k-admin", "*", "admin"),
            "t-writer": _p("k-writer", "acme", "writer"),
        }
    )
    app.state.credentials = creds
    app.state.apikeys = FakeApiKeys()

    @app.post("/ingest")
    async def ingest(principal: LogsWrite) -> dict:
        return {"tenant": principal.tenant, "sub": principal.sub}

    @app.get("/export")
    async def export(principal: LogsExport) -> dict:
        return {"tenant": principal.tenant, "role": principal.role}

    @app.get("/me")
    async def me(principal: Authenticated) -> dict:
        return {"tenant": principal.tenant}

    @app.get("/scoped")
    async def scoped(scope: TenantLogsRead) -> dict:
        return {"tenant": scope.tenant, "sub": scope.principal.sub}

    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    resp = await client.get("/export")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert resp.headers["content-type"] == "application/problem+json"


async def test_invalid_token_is_401(client: httpx.AsyncClient) -> None:
    resp = await client.get("/export", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401


async def test_role_without_permission_is_403(client: httpx.AsyncClient) -> None:
    resp = await client.get("/export", headers={"Authorization": "Bearer t-viewer"})
    assert resp.status_code == 403
    assert "viewer" in resp.json()["detail"]


async def test_role_with_permission_gets_its_tenant(client: httpx.AsyncClient) -> None:
    resp = await client.get("/export", headers={"Authorization": "Bearer t-auditor"})
    assert resp.status_code == 200
    assert resp.json() == {"tenant": "acme", "role": "auditor"}


async def test_cross_tenant_header_is_403(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/export", headers={"Authorization": "Bearer t-auditor", "X-Tenant-ID": "globex"}
    )
    assert resp.status_code == 403


async def test_platform_admin_picks_tenant_by_header(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/export", headers={"Authorization": "Bearer t-admin", "X-Tenant-ID": "globex"}
    )
    assert resp.json() == {"tenant": "globex", "role": "admin"}


async def test_revoked_credential_is_401_even_with_valid_token(
    client: httpx.AsyncClient, creds: FakeCredentials
) -> None:
    creds.revoked.add("k-viewer")
    resp = await client.get("/me", headers={"Authorization": "Bearer t-viewer"})
    assert resp.status_code == 401
    assert creds.checked == ["k-viewer"]


# --- API keys sent directly: ingest only ---------------------------------------------

BASIC_WRITER = "Basic " + base64.b64encode(b"key-writer:pw").decode()


@pytest.mark.parametrize(
    "authorization",
    [BASIC_WRITER, "ApiKey " + base64.b64encode(b"key-writer:pw").decode()],
)
async def test_ingest_takes_an_api_key_directly(client: httpx.AsyncClient, authorization):
    resp = await client.post("/ingest", headers={"Authorization": authorization})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tenant": "acme", "sub": "key-writer"}


async def test_an_api_key_cannot_act_on_another_tenant(client: httpx.AsyncClient):
    resp = await client.post("/ingest", headers={"Authorization": BASIC_WRITER, "X-Tenant-ID": "x"})
    assert resp.status_code == 403


async def test_a_platform_admin_key_names_its_tenant(client: httpx.AsyncClient):
    admin = "Basic " + base64.b64encode(b"key-admin:pw").decode()
    resp = await client.post("/ingest", headers={"Authorization": admin, "X-Tenant-ID": "globex"})
    assert resp.json() == {"tenant": "globex", "sub": "key-admin"}


async def test_ingest_without_credentials_offers_both_schemes(client: httpx.AsyncClient):
    resp = await client.post("/ingest")
    assert resp.status_code == 401
    assert "Basic" in resp.headers["www-authenticate"]
    assert "API key" in resp.json()["detail"]


async def test_a_wrong_api_key_is_401(client: httpx.AsyncClient):
    wrong = "Basic " + base64.b64encode(b"key-writer:nope").decode()
    resp = await client.post("/ingest", headers={"Authorization": wrong})
    assert resp.status_code == 401


async def test_api_keys_sent_directly_do_not_read(client: httpx.AsyncClient):
    resp = await client.get("/export", headers={"Authorization": BASIC_WRITER})
    assert resp.status_code == 401
    assert "/api/v1/auth/token" in resp.json()["detail"]


# --- the tenant scope: one dependency for HTTP and WebSocket routes -----------------------


async def test_a_tenant_scope_is_the_tokens_own_tenant(client: httpx.AsyncClient) -> None:
    resp = await client.get("/scoped", headers={"Authorization": "Bearer t-viewer"})
    assert resp.json() == {"tenant": "acme", "sub": "k-viewer"}


@pytest.mark.parametrize(
    ("tenant", "status", "answer"),
    [
        (None, 400, "X-Tenant-ID"),  # a platform admin must name the tenant
        ("nope", 404, "No tenant 'nope'."),  # ... one that exists
        ("globex", 200, "globex"),
    ],
)
async def test_a_platform_admin_scope_names_an_existing_tenant(
    client: httpx.AsyncClient, tenant: str | None, status: int, answer: str
) -> None:
    headers = {"Authorization": "Bearer t-admin", **({"X-Tenant-ID": tenant} if tenant else {})}
    resp = await client.get("/scoped", headers=headers)
    assert resp.status_code == status, resp.text
    assert answer in (resp.json()["detail"] if status != 200 else resp.json()["tenant"])


def websocket(app: FastAPI, query: str = "", headers: dict[str, str] | None = None) -> WebSocket:
    """A WebSocket connection as the live tail's route gets it (nothing is sent)."""
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "websocket", "path": "/stream", "query_string": query.encode()}
    return WebSocket({**scope, "headers": raw, "app": app}, receive=_unused, send=_unused)


async def _unused(*message: Message) -> Message:
    raise AssertionError("the dependency reads the connection's scope only")


@pytest.mark.parametrize(
    ("query", "tenant", "sub"),
    [("token=t-viewer", "acme", "k-viewer"), ("token=t-admin&tenant=globex", "globex", "k-admin")],
)
async def test_a_websocket_takes_the_same_tenant_scope(
    app: FastAPI, query: str, tenant: str, sub: str
) -> None:
    scope = await logs_read_scope(websocket(app, query))
    assert (scope.tenant, scope.principal.sub) == (tenant, sub)


@pytest.mark.parametrize(
    ("query", "error", "detail"),
    [
        ("token=t-admin&tenant=nope", NotFound, "No tenant 'nope'."),
        ("token=t-admin", BadRequest, "X-Tenant-ID"),
        ("token=nope", Unauthorized, "bad token"),
        ("", Unauthorized, "?token="),  # told where a browser can put it
    ],
)
async def test_a_websocket_is_refused_as_a_request_is(
    app: FastAPI, query: str, error: type[LogServerError], detail: str
) -> None:
    with pytest.raises(error) as refused:
        await logs_read_scope(websocket(app, query))
    assert detail in refused.value.detail


async def test_a_websocket_may_send_its_token_in_a_header(app: FastAPI) -> None:
    scope = await logs_read_scope(websocket(app, headers={"Authorization": "Bearer t-auditor"}))
    assert scope.tenant == "acme"
    with pytest.raises(Forbidden):  # the read permission, as on the HTTP read routes
        await logs_read_scope(websocket(app, "token=t-writer"))
