"""A tenant's limits through the tenant API: effective values, PATCH rules, who may."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api, bearer

pytestmark = pytest.mark.integration

FIELDS = {
    "ingest_events_per_second",
    "ingest_burst",
    "ingest_bytes_per_second",
    "daily_events",
    "max_concurrent_queries",
    "max_query_range_hours",
    "max_export_events",
    "max_concurrent_tails",
}


async def test_get_shows_effective_limits_and_patch_changes_them(api: Api) -> None:
    key = await api.tenant("lim")
    url = f"/api/v1/tenants/{key}"
    got = (await api.http.get(url, headers=api.admin)).json()
    assert set(got["limits"]) == FIELDS and got["limit_overrides"] == {}
    defaults = got["limits"]
    assert defaults["daily_events"] == 0  # the daily quota is off by default

    resp = await api.http.patch(
        url, json={"limits": {"ingest_events_per_second": 100}}, headers=api.admin
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["limits"] == {**defaults, "ingest_events_per_second": 100}
    assert body["limit_overrides"] == {"ingest_events_per_second": 100}

    # a field left out stays as it is; null goes back to the default; 0 is "no limit"
    resp = await api.http.patch(
        url,
        json={"limits": {"max_concurrent_tails": 0, "daily_events": 1000}},
        headers=api.admin,
    )
    assert resp.json()["limit_overrides"] == {
        "ingest_events_per_second": 100,
        "max_concurrent_tails": 0,
        "daily_events": 1000,
    }
    resp = await api.http.patch(
        url, json={"limits": {"ingest_events_per_second": None}}, headers=api.admin
    )
    assert resp.json()["limits"]["ingest_events_per_second"] == defaults["ingest_events_per_second"]
    assert resp.json()["limit_overrides"] == {"max_concurrent_tails": 0, "daily_events": 1000}
    listed = await api.http.get("/api/v1/tenants", params={"limit": 1000}, headers=api.admin)
    mine = next(t for t in listed.json()["data"] if t["key"] == key)
    assert mine["limits"]["daily_events"] == 1000
    resp = await api.http.patch(url, json={"limits": None}, headers=api.admin)
    assert resp.json()["limits"] == defaults and resp.json()["limit_overrides"] == {}


async def test_limits_are_validated_and_only_a_platform_admin_changes_them(api: Api) -> None:
    key = await api.tenant("lim", limits={"max_concurrent_queries": 3})
    url = f"/api/v1/tenants/{key}"
    for limits, field in [
        ({"ingest_events_per_second": -1}, "limits.ingest_events_per_second"),
        ({"ingest_burst": 1.5}, "limits.ingest_burst"),
        ({"daily_events": "many"}, "limits.daily_events"),
        ({"max_export_events": 10**13}, "limits.max_export_events"),
        ({"max_queries": 1}, "limits.max_queries"),
    ]:
        resp = await api.http.patch(url, json={"limits": limits}, headers=api.admin)
        assert resp.status_code == 422, limits
        assert resp.json()["errors"][0]["field"] == field, resp.json()
    bad_create = await api.http.post(
        "/api/v1/tenants",
        json={"key": f"{key}-x", "name": "x", "limits": {"daily_events": -5}},
        headers=api.admin,
    )
    assert bad_create.status_code == 422

    tenant_admin = (await api.role_tokens(key))["admin"]
    mine = await api.http.get(url, headers=bearer(tenant_admin))
    assert mine.status_code == 200 and mine.json()["limits"]["max_concurrent_queries"] == 3
    forbidden = await api.http.patch(
        url,
        json={"name": "renamed", "limits": {"max_concurrent_queries": 1000}},
        headers=bearer(tenant_admin),
    )
    assert forbidden.status_code == 403 and "limits" in forbidden.json()["detail"]
    after = (await api.http.get(url, headers=api.admin)).json()
    assert after["limits"]["max_concurrent_queries"] == 3 and after["name"] != "renamed"
    renamed = await api.http.patch(url, json={"name": "renamed"}, headers=bearer(tenant_admin))
    assert renamed.status_code == 200  # its other fields it may still change
