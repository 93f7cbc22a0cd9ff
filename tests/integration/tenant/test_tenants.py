"""The tenant service through the gateway: 401 → 403 → cross-tenant 404 → success."""

from __future__ import annotations

import secrets

import httpx
import pytest

from services.cli.stack import ProcessGroup
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration


async def test_tenant_lifecycle(api: Api) -> None:
    key = await api.tenant(retention_days=7)
    got = await api.http.get(f"/api/v1/tenants/{key}", headers=api.admin)
    assert got.status_code == 200
    assert got.json()["retention_days"] == 7 and got.json()["status"] == "active"
    patched = await api.http.patch(
        f"/api/v1/tenants/{key}", json={"name": "Renamed", "retention_days": 90}, headers=api.admin
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Renamed" and patched.json()["retention_days"] == 90
    listed = await api.http.get("/api/v1/tenants", params={"limit": 1000}, headers=api.admin)
    assert key in [t["key"] for t in listed.json()["data"]]
    assert listed.json()["meta"]["total"] >= 1
    gone = await api.http.delete(f"/api/v1/tenants/{key}", headers=api.admin)
    assert gone.status_code == 200 and gone.json()["status"] == "disabled"


async def test_tenant_bad_input(api: Api) -> None:
    dup = await api.tenant()
    resp = await api.http.post("/api/v1/tenants", json={"key": dup, "name": "x"}, headers=api.admin)
    assert resp.status_code == 409 and dup in resp.json()["detail"]
    for body, field in [
        ({"key": "Bad Key!", "name": "x"}, "key"),
        ({"key": "ok-key"}, "name"),
        ({"key": "ok-key", "name": "x", "retention_days": 0}, "retention_days"),
        ({"key": "ok-key", "name": "x", "surprise": 1}, "surprise"),
    ]:
        resp = await api.http.post("/api/v1/tenants", json=body, headers=api.admin)
        assert resp.status_code == 422, body
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["errors"][0]["field"] == field
    not_json = await api.http.post(
        "/api/v1/tenants", content=b"{", headers={**api.admin, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
    empty_patch = await api.http.patch(f"/api/v1/tenants/{dup}", json={}, headers=api.admin)
    assert empty_patch.status_code == 422
    missing = await api.http.get("/api/v1/tenants/no-such-tenant", headers=api.admin)
    assert missing.status_code == 404
    bad_role = await api.http.post(
        f"/api/v1/tenants/{dup}/api-keys", json={"name": "k", "role": "root"}, headers=api.admin
    )
    assert bad_role.status_code == 422 and bad_role.json()["errors"][0]["field"] == "role"


async def test_api_key_secret_shown_once_and_stored_hashed(api: Api) -> None:
    tenant = await api.tenant()
    key_id, secret = await api.key(tenant, "writer")
    listed = await api.http.get(f"/api/v1/tenants/{tenant}/api-keys", headers=api.admin)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["data"]] == [key_id]
    assert secret not in listed.text and "secret_hash" not in listed.text
    await api.token(key_id, secret)
    listed = await api.http.get(f"/api/v1/tenants/{tenant}/api-keys", headers=api.admin)
    assert listed.json()["data"][0]["last_used_at"] is not None


# One authenticated call per service that verifies tokens itself (each has its own cache).
def _calls(tenant: str) -> dict[str, str]:
    return {
        "auth": "/api/v1/auth/me",
        "tenant": f"/api/v1/tenants/{tenant}",
        "log": "/api/v1/logs?limit=1",
    }


async def _answers(api: Api, headers: dict[str, str], tenant: str) -> dict[str, int]:
    return {
        service: (await api.http.get(path, headers=headers)).status_code
        for service, path in _calls(tenant).items()
    }


async def _everywhere(api: Api, headers: dict[str, str], tenant: str, status: int) -> None:
    """Every service answers ``status`` within 2 s: the stack caches credential status for
    300 s, so only the change's invalidation can make this happen in time."""

    answers: dict[str, int] = {}

    async def settled():
        answers.update(await _answers(api, headers, tenant))
        return set(answers.values()) == {status}

    try:
        await eventually(settled, within=2, every=0.05)
    except AssertionError as exc:
        raise AssertionError(f"expected {status} from every service, got {answers}") from exc


async def test_revoked_key_stops_working_at_once_everywhere(api: Api) -> None:
    tenant = await api.tenant()
    key_id, secret = await api.key(tenant, "admin")
    token = await api.token(key_id, secret)
    # every service has now cached this credential as active
    assert set((await _answers(api, bearer(token), tenant)).values()) == {200}
    resp = await api.http.delete(f"/api/v1/tenants/{tenant}/api-keys/{key_id}", headers=api.admin)
    assert resp.status_code == 204
    refused = await api.http.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": key_id, "client_secret": secret},
    )
    assert refused.status_code == 401
    await _everywhere(api, bearer(token), tenant, 401)
    again = await api.http.delete(f"/api/v1/tenants/{tenant}/api-keys/lsk_nope", headers=api.admin)
    assert again.status_code == 404


async def test_disabling_and_re_enabling_a_tenant_apply_at_once_everywhere(api: Api) -> None:
    tenant = await api.tenant()
    key_id, secret = await api.key(tenant, "admin")
    token = await api.token(key_id, secret)
    as_admin = {**api.admin, "X-Tenant-ID": tenant}
    assert set((await _answers(api, bearer(token), tenant)).values()) == {200}
    assert (await api.http.get("/api/v1/logs", headers=as_admin)).status_code == 200
    assert (await api.http.delete(f"/api/v1/tenants/{tenant}", headers=api.admin)).is_success
    refused = await api.http.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": key_id, "client_secret": secret},
    )
    assert refused.status_code == 401
    await _everywhere(api, bearer(token), tenant, 401)

    async def admin_gets(status: int):
        return (await api.http.get("/api/v1/logs", headers=as_admin)).status_code == status

    await eventually(lambda: admin_gets(404), within=2, every=0.05)  # the platform admin too
    enabled = await api.http.patch(
        f"/api/v1/tenants/{tenant}", json={"status": "active"}, headers=api.admin
    )
    assert enabled.status_code == 200 and enabled.json()["status"] == "active"
    await _everywhere(api, bearer(token), tenant, 200)  # the README's sequence, without 30 s
    await eventually(lambda: admin_gets(200), within=2, every=0.05)


async def test_a_tenant_created_after_a_miss_is_usable_at_once(api: Api) -> None:
    key = f"later-{secrets.token_hex(4)}"
    headers = {**api.admin, "X-Tenant-ID": key}
    assert (await api.http.get("/api/v1/logs", headers=headers)).status_code == 404  # cached
    created = await api.http.post(
        "/api/v1/tenants", json={"key": key, "name": key}, headers=api.admin
    )
    assert created.status_code == 201

    async def found():
        return (await api.http.get("/api/v1/logs", headers=headers)).status_code == 200

    await eventually(found, within=2, every=0.05)


TENANT_ENDPOINTS = [
    ("GET", "/api/v1/tenants/{t}", None),
    ("PATCH", "/api/v1/tenants/{t}", {"name": "n"}),
    ("GET", "/api/v1/tenants/{t}/api-keys", None),
    ("POST", "/api/v1/tenants/{t}/api-keys", {"name": "k", "role": "viewer"}),
]


@pytest.mark.parametrize(("method", "path", "body"), TENANT_ENDPOINTS)
async def test_tenant_endpoints_walk_401_403_404_success(
    api: Api, method: str, path: str, body: dict | None
) -> None:
    mine, theirs = await api.tenant("a"), await api.tenant("b")
    tokens = await api.role_tokens(mine)

    async def call(token: str | None, tenant: str) -> httpx.Response:
        headers = bearer(token) if token else {}
        return await api.http.request(method, path.format(t=tenant), json=body, headers=headers)

    assert (await call(None, mine)).status_code == 401
    for role in ("auditor", "viewer", "writer"):
        assert (await call(tokens[role], mine)).status_code == 403, role
    assert (await call(tokens["admin"], theirs)).status_code == 404
    assert (await call(tokens["admin"], mine)).is_success
    assert (await call(api.admin["Authorization"].split()[1], theirs)).is_success


async def test_tenant_admin_sees_only_its_tenant_and_cannot_create_or_disable(api: Api) -> None:
    mine, theirs = await api.tenant("a"), await api.tenant("b")
    admin = await api.token(*await api.key(mine, "admin"))
    listed = await api.http.get("/api/v1/tenants", headers=bearer(admin))
    assert [t["key"] for t in listed.json()["data"]] == [mine]
    create = await api.http.post(
        "/api/v1/tenants", json={"key": "new-one", "name": "n"}, headers=bearer(admin)
    )
    assert create.status_code == 403
    assert (
        await api.http.delete(f"/api/v1/tenants/{mine}", headers=bearer(admin))
    ).status_code == 403
    status = await api.http.patch(
        f"/api/v1/tenants/{mine}", json={"status": "disabled"}, headers=bearer(admin)
    )
    assert status.status_code == 403
    revoke = await api.http.delete(
        f"/api/v1/tenants/{theirs}/api-keys/lsk_x", headers=bearer(admin)
    )
    assert revoke.status_code == 404
    spoof = await api.http.get(
        f"/api/v1/tenants/{mine}", headers=bearer(admin, **{"X-Tenant-ID": theirs})
    )
    assert spoof.status_code == 403


async def test_no_secret_reaches_a_log_line(api: Api, stack: ProcessGroup) -> None:
    tenant = await api.tenant()
    key_id, secret = await api.key(tenant, "writer")
    await api.token(key_id, secret)
    await api.http.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": key_id,
            "client_secret": secret + "x",
        },
    )
    logs = "".join(stack.tail(name, 100_000) for name in ("auth", "tenant", "gateway"))
    assert "request" in logs  # the request log is on, so the check below means something
    assert secret not in logs
    assert stack.cfg.admin_client_secret not in logs
