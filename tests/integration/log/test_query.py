"""Search, get, stats, export and cleanup against the real pipeline and storage."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.integration.conftest import Api, bearer
from tests.integration.helpers import ingest, stored_total

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def ts(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")


FIXTURE = [
    {
        "id": "e1",
        "timestamp": ts(5),
        "level": "debug",
        "message": "cache warm (50%)",
        "service": "api",
        "host": "h1",
    },
    {
        "id": "e2",
        "timestamp": ts(4),
        "severity": "INFO",
        "message": "request served",
        "app_name": "api",
        "trace_id": "tr-1",
        "processId": "p-1",
        "stage": "build",
    },
    {
        "id": "e3",
        "timestamp": ts(3),
        "level": "warn",
        "message": "slow query .* here",
        "service": "db",
        "trace_id": "tr-1",
        "version": 3,
    },
    {
        "id": "e4",
        "timestamp": ts(2),
        "level": "error",
        "message": "payment failed",
        "service": "billing",
        "action": "payment.charge",
        "resource_type": "invoice",
        "resource_id": "inv-9",
        "user_id": "u-1",
        "ip_address": "10.0.0.1",
        "user_agent": "Mozilla/5.0 (X11; Linux)",
        "before": {"paid": False},
        "after": {"paid": False},
        "metadata": {"attempt": 2},
    },
    {
        "id": "e5",
        "timestamp": ts(1),
        "level": "fatal",
        "message": "out of memory",
        "service": "billing",
        "projectId": "proj-7",
        "stage": "deploy",
    },
    {
        "id": "e6",
        "timestamp": ts(0.5),
        "action": "user.login",
        "user_id": "u-2",
        "ip_address": "10.0.0.2",
        "user_agent": "curl/8.0",
        "service": "auth",
    },
]


@pytest.fixture(scope="module")
async def populated(cfg, admin_token):
    import httpx

    async with httpx.AsyncClient(base_url=cfg.gateway_url, timeout=30) as http:
        api = Api(http, admin_token)
        tenant = await api.tenant("q", retention_days=3650)
        tokens = await api.role_tokens(tenant)
        await ingest(http, bearer(tokens["writer"]), FIXTURE)

        async def all_stored():
            return await stored_total(http, bearer(tokens["viewer"])) == len(FIXTURE)

        from tests.integration.helpers import eventually

        await eventually(all_stored, within=60)
        yield tenant, tokens


async def _ids(api: Api, token: str, **params) -> list[str]:
    resp = await api.http.get("/api/v1/logs", params=params, headers=bearer(token))
    assert resp.status_code == 200, resp.text
    return [e["id"] for e in resp.json()["data"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["e6", "e5", "e4", "e3", "e2", "e1"]),
        ({"sort": "asc"}, ["e1", "e2", "e3", "e4", "e5", "e6"]),
        ({"level": "ERROR"}, ["e4"]),
        ({"severity": "critical"}, ["e5"]),
        ({"level": "warning,error"}, ["e4", "e3"]),
        ({"min_level": "warn"}, ["e5", "e4", "e3"]),
        ({"service": "billing"}, ["e5", "e4"]),
        ({"host": "h1"}, ["e1"]),
        ({"action": "payment.charge"}, ["e4"]),
        ({"resource_type": "invoice", "resource_id": "inv-9"}, ["e4"]),
        ({"user_id": "u-2"}, ["e6"]),
        ({"ip_address": "10.0.0.1"}, ["e4"]),
        ({"user_agent": "mozilla"}, ["e4"]),
        ({"q": "FAILED"}, ["e4"]),
        ({"q": ".*"}, ["e3"]),  # regex characters match literally
        ({"q": "(50%)"}, ["e1"]),
        ({"trace_id": "tr-1"}, ["e3", "e2"]),
        ({"from": ts(3), "to": ts(1)}, ["e4", "e3"]),
        ({"timestamp": NOW.date().isoformat(), "service": "auth"}, ["e6"]),
        ({"attributes.processId": "p-1"}, ["e2"]),
        ({"attributes.stage": "deploy"}, ["e5"]),
        ({"attributes.version": "3"}, ["e3"]),
        ({"attributes.projectId": "proj-7"}, ["e5"]),
        ({"service": "nope"}, []),
    ],
)
async def test_each_filter(api: Api, populated, params: dict, expected: list[str]) -> None:
    _, tokens = populated
    assert await _ids(api, tokens["viewer"], **params) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"bogus": "1"},
        {"service[$ne]": "x"},
        {"attributes.$where": "1"},
        {"level": "loud"},
        {"min_level": "x"},
        {"from": "yesterday"},
        {"timestamp": "2026-13-01"},
        {"limit": "0"},
        {"limit": "1001"},
        {"sort": "sideways"},
        {"cursor": "garbage"},
        {"service": ""},
    ],
)
async def test_malformed_filters_are_422_never_match_all(api: Api, populated, params) -> None:
    _, tokens = populated
    resp = await api.http.get("/api/v1/logs", params=params, headers=bearer(tokens["viewer"]))
    assert resp.status_code == 422, (params, resp.text)
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["errors"][0]["field"]


async def test_get_one_and_cross_tenant_404(api: Api, populated) -> None:
    _, tokens = populated
    got = await api.http.get("/api/v1/logs/e4", headers=bearer(tokens["viewer"]))
    assert got.status_code == 200
    body = got.json()
    assert body["level"] == "ERROR" and body["metadata"] == {"attempt": 2}
    assert body["before"] == {"paid": False}
    other = await api.tenant()
    other_viewer = await api.token(*await api.key(other, "viewer"))
    assert (await api.http.get("/api/v1/logs/e4", headers=bearer(other_viewer))).status_code == 404


async def test_cursor_and_page_pagination(api: Api, populated) -> None:
    _, tokens = populated
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        resp = await api.http.get("/api/v1/logs", params=params, headers=bearer(tokens["viewer"]))
        page = resp.json()
        seen += [e["id"] for e in page["data"]]
        cursor = page["meta"]["next_cursor"]
        if not cursor:
            break
    assert seen == ["e6", "e5", "e4", "e3", "e2", "e1"]
    page2 = await api.http.get(
        "/api/v1/logs", params={"page": 2, "size": 4}, headers=bearer(tokens["viewer"])
    )
    assert [e["id"] for e in page2.json()["data"]] == ["e2", "e1"]
    assert page2.json()["meta"]["page"] == 2
    assert "total" not in page2.json()["meta"]  # totals only on request


async def test_stats_match_the_counted_fixture(api: Api, populated) -> None:
    _, tokens = populated
    resp = await api.http.get("/api/v1/logs/stats", headers=bearer(tokens["viewer"]))
    assert resp.json()["counts"] == {
        "INFO": 2,
        "CRITICAL": 1,
        "DEBUG": 1,
        "ERROR": 1,
        "WARNING": 1,
    }
    by_service = await api.http.get(
        "/api/v1/logs/stats",
        params={"by": "service", "interval": "1h"},
        headers=bearer(tokens["viewer"]),
    )
    body = by_service.json()
    assert body["counts"] == {"api": 2, "billing": 2, "auth": 1, "db": 1}
    assert sum(b["count"] for b in body["histogram"]) == 6
    assert len(body["histogram"]) >= 5  # the fixture spans five different hours
    # Each bucket also counts by the grouped field (the console stacks its bars by level).
    for bucket in body["histogram"]:
        assert sum(bucket["counts"].values()) == bucket["count"]
    per_service: dict[str, int] = {}
    for bucket in body["histogram"]:
        for name, n in bucket["counts"].items():
            per_service[name] = per_service.get(name, 0) + n
    assert per_service == body["counts"]
    filtered = await api.http.get(
        "/api/v1/logs/stats",
        params={"by": "action", "service": "billing"},
        headers=bearer(tokens["viewer"]),
    )
    assert filtered.json()["counts"] == {"(none)": 1, "payment.charge": 1}
    bad = await api.http.get(
        "/api/v1/logs/stats", params={"by": "host"}, headers=bearer(tokens["viewer"])
    )
    assert bad.status_code == 422


async def test_every_export_format_parses_back_to_the_same_events(api: Api, populated) -> None:
    _, tokens = populated
    search = await api.http.get(
        "/api/v1/logs", params={"sort": "asc"}, headers=bearer(tokens["auditor"])
    )
    events = search.json()["data"]
    assert len(events) == 6

    def export(fmt: str):
        return api.http.get(
            "/api/v1/logs/export",
            params={"format": fmt, "sort": "asc"},
            headers=bearer(tokens["auditor"]),
        )

    nd = await export("ndjson")
    assert nd.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in nd.headers["content-disposition"]
    assert [orjson.loads(line) for line in nd.text.splitlines()] == events
    js = await export("json")
    assert js.json() == events
    rows = list(csv.DictReader(io.StringIO((await export("csv")).text)))
    parsed = []
    for row in rows:
        event = {}
        for key, value in row.items():
            if value == "":
                continue
            event[key] = (
                orjson.loads(value)
                if key in ("before", "after", "metadata", "attributes")
                else value
            )
        parsed.append(event)
    assert parsed == events
    assert (await export("xml")).status_code == 422


async def test_cleanup_bounds(api: Api) -> None:
    tenant = await api.tenant("c", retention_days=3650)
    tokens = await api.role_tokens(tenant)
    old, mid, new = ts(24 * 40), ts(24 * 10), ts(1)
    await ingest(
        api.http,
        bearer(tokens["writer"]),
        [
            {"id": "old", "timestamp": old, "message": "old"},
            {"id": "mid", "timestamp": mid, "message": "mid", "level": "debug"},
            {"id": "new", "timestamp": new, "message": "new"},
        ],
    )
    from tests.integration.helpers import eventually

    async def three():
        return await stored_total(api.http, bearer(tokens["viewer"])) == 3

    await eventually(three, within=60)
    admin = bearer(tokens["admin"])
    nothing = await api.http.delete("/api/v1/logs/cleanup", headers=admin)
    assert nothing.status_code == 422  # a match-all delete needs all=true
    assert (
        await api.http.delete("/api/v1/logs/cleanup", params={"before": "soon"}, headers=admin)
    ).status_code == 422
    r = await api.http.delete("/api/v1/logs/cleanup", params={"older_than_days": 30}, headers=admin)
    assert r.json() == {"deleted": 1}
    r = await api.http.delete(
        "/api/v1/logs/cleanup", params={"before": ts(0), "level": "INFO"}, headers=admin
    )
    assert r.json() == {"deleted": 1}  # 'new'; 'mid' is DEBUG
    assert await _ids(api, tokens["viewer"]) == ["mid"]
    r = await api.http.delete("/api/v1/logs/cleanup", params={"all": "true"}, headers=admin)
    assert r.json() == {"deleted": 1}
    for role in ("auditor", "viewer", "writer"):
        resp = await api.http.delete(
            "/api/v1/logs/cleanup", params={"all": "true"}, headers=bearer(tokens[role])
        )
        assert resp.status_code == 403, role


async def test_explain_shows_how_the_storage_answers(api: Api, populated, cfg) -> None:
    """On MongoDB the main queries must be index scans. FerretDB v1 (SQLite) pushes
    only `_id` equality down to its engine, which is why GET /logs/{id} reads by
    `_id`; there other filters run in Go (docs/architecture.md#backends), as this test states."""
    from pymongo import AsyncMongoClient

    from services.core.logfilters import parse_params

    tenant, _ = populated
    client = AsyncMongoClient(cfg.mongodb_url)
    try:
        db = client["logserver"]
        flt = parse_params([("service", "billing")], frozenset()).filter
        plan = (
            await db["logs"]
            .find(flt.to_mongo(tenant))
            .sort([("timestamp", -1), ("id", -1)])
            .limit(50)
            .explain()
        )
        by_id = await db["logs"].find({"_id": f"{tenant}:e4"}).explain()
        if plan.get("serverInfo", {}).get("ferretdbVersion"):
            assert by_id["filterPushdown"] is True, by_id
            assert plan["filterPushdown"] is False, plan  # filtered in Go, as documented
        else:
            text = orjson.dumps(plan).decode()
            assert "IXSCAN" in text and "COLLSCAN" not in text, text
    finally:
        await client.close()
