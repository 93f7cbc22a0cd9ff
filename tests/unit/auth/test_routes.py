"""The auth routes' parsing of hostile input: token request bodies, forward-auth URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.auth.routes import router
from services.core.errors import Unauthorized
from services.core.principal import Principal
from services.core.web.app import install_error_handlers

PROBLEM = "application/problem+json"
VIEWER = Principal(sub="k-1", tenant_claim="acme", role="viewer", jti="j", expires_at=2**31)


class FakeVerifier:
    def cached(self, token: str) -> Principal | None:
        return None  # always the awaited path

    async def verify(self, token: str) -> Principal:
        if token == "t-viewer":
            return VIEWER
        raise Unauthorized("The bearer token is malformed.")


class FakeCredentials:
    def known_active(self, principal: Principal) -> bool:
        return False  # always the awaited path

    async def ensure_active(self, principal: Principal) -> None:
        return None


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.verifier = FakeVerifier()
    app.state.credentials = FakeCredentials()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _problem(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM
    body = resp.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # the stdlib parser's RecursionError was a 500
        '{"a":' * 100_000 + "1" + "}" * 100_000,
    ],
    ids=["array", "object"],
)
async def test_deeply_nested_json_token_request_is_400(
    client: httpx.AsyncClient, body: str
) -> None:
    resp = await client.post(
        "/api/v1/auth/token", content=body, headers={"content-type": "application/json"}
    )
    problem = _problem(resp, 400)
    assert problem["detail"].startswith("The body is not valid JSON")
    assert "depth limit exceeded" in problem["detail"]


async def test_json_token_request_that_is_not_an_object_is_422(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.post("/api/v1/auth/token", json=[1, 2])
    assert _problem(resp, 422)["detail"] == "The body must be a JSON object."


async def test_malformed_json_token_request_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/api/v1/auth/token",
        content=b'{"grant_type": ',
        headers={"content-type": "application/json"},
    )
    assert _problem(resp, 400)["detail"].startswith("The body is not valid JSON")


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        # urllib's urlsplit raised ValueError (Invalid IPv6 URL) on these: a 500
        ("X-Original-URL", "http://[x/?token=a", 401),
        ("X-Original-URL", "http://[x/?token=t-viewer", 200),
        ("X-Original-URL", "http://]x/?token=t-viewer#frag", 200),
        (
            "X-Original-URL",
            "https://logs.example.com/api/v1/logs/stream?tail=5&token=t-viewer",
            200,
        ),
        ("X-Original-URI", "/api/v1/logs/stream?token=t-viewer", 200),
        ("X-Original-URI", "/api/v1/logs/stream", 401),
    ],
)
async def test_forward_auth_reads_the_token_from_any_original_url(
    client: httpx.AsyncClient, header: str, value: str, status: int
) -> None:
    resp = await client.get("/api/v1/auth/verify", headers={header: value})
    assert resp.status_code == status, resp.text
    if status == 200:
        assert resp.headers["x-auth-sub"] == "k-1"
    else:
        _problem(resp, status)
