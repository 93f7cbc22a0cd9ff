"""Our own ingest with an API key sent directly (Basic / ApiKey) and gzip bodies."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest

from services.cli.stack import StackConfig
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import basic, eventually, queue_drained, stored_total

pytestmark = pytest.mark.integration


async def test_bulk_with_basic_apikey_and_gzip(api: Api, cfg: StackConfig) -> None:
    tenant = await api.tenant("keys")
    key_id, secret = await api.key(tenant, "writer")
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    apikey = {"Authorization": "ApiKey " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()}

    one = await api.http.post(
        "/api/v1/logs", json={"message": "basic"}, headers=basic(key_id, secret)
    )
    assert one.status_code == 202, one.text
    body = gzip.compress(
        orjson.dumps([{"message": f"gz {i}", "service": "zip"} for i in range(50)])
    )
    bulk = await api.http.post(
        "/api/v1/logs/bulk",
        content=body,
        headers=apikey | {"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert bulk.status_code == 202, bulk.text
    assert bulk.json()["accepted"] == 50

    async def all_stored():
        return await stored_total(api.http, viewer) == 51

    await eventually(all_stored, within=60)
    assert await stored_total(api.http, viewer, service="zip") == 50

    bomb = gzip.compress(b" " * (11 * 1024 * 1024))
    for content, status in ((bomb, 413), (b"not gzip", 400)):
        resp = await api.http.post(
            "/api/v1/logs/bulk",
            content=content,
            headers=apikey | {"Content-Encoding": "gzip"},
        )
        assert resp.status_code == status, resp.text
    # an API key reads nothing directly: reading takes a token
    assert (await api.http.get("/api/v1/logs", headers=apikey)).status_code == 401
    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 51


async def test_machine_credentials_rules(api: Api) -> None:
    tenant = await api.tenant("keys-rules")
    other = await api.tenant("keys-other")
    writer = await api.key(tenant, "writer")
    event = {"message": "m"}
    post = api.http.post

    assert (
        await post("/api/v1/logs", json=event, headers=basic(writer[0], "wrong"))
    ).status_code == 401
    viewer_key = basic(*await api.key(tenant, "viewer"))
    resp = await post("/api/v1/logs", json=event, headers=viewer_key)
    assert resp.status_code == 403 and "role may not ingest" in resp.json()["detail"]
    cross = basic(*writer) | {"X-Tenant-ID": other}
    assert (await post("/api/v1/logs", json=event, headers=cross)).status_code == 403

    # forward-auth (edge auth in Kubernetes) accepts the writer key, as the service does
    verify = await api.http.get("/api/v1/auth/verify", headers=basic(*writer))
    assert verify.status_code == 200 and verify.headers["x-auth-tenant"] == tenant

    # revoking the key takes effect at once, although its answer is cached (300 s here)
    assert (await post("/api/v1/logs", json=event, headers=basic(*writer))).status_code == 202
    resp = await api.http.delete(
        f"/api/v1/tenants/{tenant}/api-keys/{writer[0]}", headers=api.admin
    )
    assert resp.status_code == 204

    async def refused():
        r = await post("/api/v1/logs", json=event, headers=basic(*writer))
        return r.status_code == 401

    await eventually(refused, within=10)


async def test_a_platform_admin_key_names_the_tenant(api: Api, cfg: StackConfig) -> None:
    tenant = await api.tenant("keys-admin")
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    admin = basic(cfg.admin_client_id, cfg.admin_client_secret)
    resp = await api.http.post("/loki/api/v1/push", content=b"{}", headers=admin)
    assert resp.status_code == 400  # which tenant? the admin must say
    body = {"streams": [{"stream": {"job": "adm"}, "values": [["0", "by the admin"]]}]}
    resp = await api.http.post(
        "/loki/api/v1/push", json=body, headers=admin | {"X-Scope-OrgID": tenant}
    )
    assert resp.status_code == 204, resp.text

    async def stored():
        return await stored_total(api.http, viewer, service="adm") == 1

    await eventually(stored, within=60)
