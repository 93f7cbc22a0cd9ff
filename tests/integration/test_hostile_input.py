"""No input reaches a 500, and no caller's bad request costs another caller theirs.

After a 500 the service used to close the keep-alive connection nginx had just put
back in its pool, so the next request on it - another tenant's POST, which nginx
does not retry - got a 502. Each hostile input below goes through the gateway and
is followed at once by ordinary requests of another tenant to the same services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.cli.stack import StackConfig
from tests.integration.conftest import Api, bearer

pytestmark = pytest.mark.integration

FAR_FUTURE_DAY = "9999-12-31"
FIRST_INSTANT_EAST = "0001-01-01T00:00:00+14:00"  # before 0001-01-01 in UTC
LAST_INSTANT_WEST = "9999-12-31T23:59:59-14:00"  # after 9999-12-31 in UTC


@dataclass
class Hostile:
    method: str
    path: str
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    content: bytes | None = None
    json: Any = None
    as_tenant: bool = True  # sent with the hostile tenant's admin token


CASES = {
    "token-deep-json": Hostile(
        "POST",
        "/api/v1/auth/token",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
        as_tenant=False,
    ),
    "verify-bad-original-url": Hostile(
        "GET",
        "/api/v1/auth/verify",
        headers={"X-Original-URL": "http://[x/?token=a"},
        as_tenant=False,
    ),
    "ingest-timestamp-before-year-1": Hostile(
        "POST", "/api/v1/logs", json={"message": "m", "timestamp": FIRST_INSTANT_EAST}
    ),
    "cleanup-before-after-year-9999": Hostile(
        "DELETE", "/api/v1/logs/cleanup", params={"before": LAST_INSTANT_WEST}
    ),
}
for _path in ("/api/v1/logs", "/api/v1/logs/stats", "/api/v1/logs/export"):
    _name = _path.rsplit("/", 1)[1]
    CASES[f"{_name}-timestamp-far-future"] = Hostile("GET", _path, {"timestamp": FAR_FUTURE_DAY})
    CASES[f"{_name}-from-before-year-1"] = Hostile("GET", _path, {"from": FIRST_INSTANT_EAST})
    CASES[f"{_name}-to-after-year-9999"] = Hostile("GET", _path, {"to": LAST_INSTANT_WEST})


@dataclass
class Tenants:
    hostile_admin: str  # token of the tenant sending the hostile input
    other_client: tuple[str, str]  # credentials of another tenant's writer key
    other_writer: str  # a token of that key


@pytest.fixture(scope="module")
async def tenants(cfg: StackConfig, admin_token: str) -> AsyncIterator[Tenants]:
    async with httpx.AsyncClient(base_url=cfg.gateway_url, timeout=30) as http:
        api = Api(http, admin_token)
        hostile = await api.tenant("hostile")
        other = await api.tenant("bystander")
        client = await api.key(other, "writer")
        yield Tenants(
            hostile_admin=await api.token(*await api.key(hostile, "admin")),
            other_client=client,
            other_writer=await api.token(*client),
        )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_hostile_input_is_4xx_and_costs_no_one_else_a_request(
    gateway: httpx.AsyncClient, tenants: Tenants, case: Hostile
) -> None:
    headers = dict(case.headers or {})
    if case.as_tenant:
        headers |= bearer(tenants.hostile_admin)
    resp = await gateway.request(
        case.method,
        case.path,
        params=case.params,
        headers=headers,
        content=case.content,
        json=case.json,
    )
    # At once, on the same gateway: another tenant's POSTs to the auth and log
    # services, which nginx sends over its pooled upstream connections - first to
    # the service that got the hostile request, while its connection is fresh in
    # the pool.
    client_id, secret = tenants.other_client

    async def get_token() -> httpx.Response:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        return await gateway.post("/api/v1/auth/token", data=form)

    async def ingest_event() -> httpx.Response:
        event = {"message": "bystander"}
        return await gateway.post("/api/v1/logs", json=event, headers=bearer(tenants.other_writer))

    if case.path.startswith("/api/v1/auth"):
        token = await get_token()
        ingest = await ingest_event()
    else:
        ingest = await ingest_event()
        token = await get_token()
    statuses = {
        "hostile": resp.status_code,
        "token": token.status_code,
        "ingest": ingest.status_code,
    }
    # Nobody else pays for it, whatever the hostile request got...
    others = (statuses["token"], statuses["ingest"])
    assert others == (200, 202), (statuses, token.text, ingest.text)
    # ...and it got a 4xx (or was harmless), never a 500.
    assert statuses["hostile"] < 500, (statuses, resp.text)
    if resp.status_code >= 400:
        assert resp.headers["content-type"] == "application/problem+json", resp.text
        assert resp.json()["detail"]
