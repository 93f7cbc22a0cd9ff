"""The shared admin client: the sync and async flavours send the same requests and read
the answers alike (httpx.MockTransport: no network)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from services.cli.admin import AdminClient, AdminError, AsyncAdminClient
from services.cli.errors import CliError, Unreachable

RANDOM = r"-[0-9a-f]{8}\b"


def _server(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/api/v1/auth/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            if form.get("client_secret") != "s3cret":
                return httpx.Response(401, json={"detail": "invalid client credentials"})
            return httpx.Response(200, json={"access_token": f"tok-{form['client_id']}"})
        if request.headers.get("authorization") != "Bearer tok-admin":
            return httpx.Response(401, json={"detail": "no token"})
        if path == "/api/v1/tenants":
            return httpx.Response(201, json=json.loads(request.content))
        if path.endswith("/api-keys"):
            role = json.loads(request.content)["role"]
            return httpx.Response(201, json={"client_id": f"id-{role}", "client_secret": "s3cret"})
        if request.method == "PATCH":
            return httpx.Response(200, json={"key": path.rsplit("/", 1)[1]})
        return httpx.Response(404, json={"detail": "not found"})

    return httpx.MockTransport(handle)


def _shape(requests: list[httpx.Request]) -> list[tuple[str, str, str | None, str]]:
    """Each request, the random part of tenant keys blanked out."""
    return [
        (
            r.method,
            re.sub(RANDOM, "-*", r.url.path),
            r.headers.get("authorization"),
            re.sub(RANDOM, "-*", r.content.decode()),
        )
        for r in requests
    ]


def test_sync_flow_creates_tenant_keys_and_tokens() -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(base_url="http://gw", transport=_server(seen)) as http:
        admin = AdminClient(http)
        admin.login("admin", "s3cret")
        tenant = admin.tenant("bench", retention_days=3)
        assert tenant.startswith("bench-") and len(tenant) == len("bench-") + 8
        writer = admin.key(tenant, "writer", name="bench writer")
        assert writer == ("id-writer", "s3cret")
        assert admin.token(*writer) == "tok-id-writer"
        assert admin.update_tenant(tenant, limits={"max_concurrent_queries": 1}) == {"key": tenant}
    created = json.loads(seen[1].content)
    assert created == {"key": tenant, "name": tenant, "retention_days": 3}
    assert json.loads(seen[2].content) == {"name": "bench writer", "role": "writer"}
    assert "authorization" not in seen[3].headers  # a token request carries no admin token


async def test_async_flow_sends_the_same_requests_as_the_sync_one() -> None:
    sync_seen: list[httpx.Request] = []
    with httpx.Client(base_url="http://gw", transport=_server(sync_seen)) as http:
        admin = AdminClient(http)
        admin.login("admin", "s3cret")
        tenant = admin.tenant("x")
        admin.token(*admin.key(tenant, "viewer"))
    async_seen: list[httpx.Request] = []
    async with httpx.AsyncClient(base_url="http://gw", transport=_server(async_seen)) as http:
        api = AsyncAdminClient(http)
        await api.login("admin", "s3cret")
        tenant = await api.tenant("x")
        await api.token(*await api.key(tenant, "viewer"))
        roles = await api.role_tokens(tenant)
    assert _shape(async_seen[:4]) == _shape(sync_seen)
    assert roles == {r: f"tok-id-{r}" for r in ("admin", "auditor", "viewer", "writer")}


def test_a_refusal_says_what_failed_with_the_servers_detail() -> None:
    with httpx.Client(base_url="http://gw", transport=_server([])) as http:
        admin = AdminClient(http)
        with pytest.raises(AdminError) as refused:
            admin.token("admin", "wrong")
        assert refused.value.status_code == 401
        assert str(refused.value) == (
            "token request to http://gw failed (401): invalid client credentials"
        )
        with pytest.raises(AdminError, match=r"creating tenant t-[0-9a-f]{8} failed \(401\)"):
            admin.tenant()  # no admin token yet


def test_an_answer_without_a_token_is_not_taken_for_one() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hello</html>")

    http = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(handle))
    with http, pytest.raises(CliError, match="is it a logserver gateway"):
        AdminClient(http).token("a", "b")


def test_a_connection_failure_is_unreachable() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    http = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(handle))
    with http, pytest.raises(Unreachable, match="cannot reach http://gw"):
        AdminClient(http).token("a", "b")
