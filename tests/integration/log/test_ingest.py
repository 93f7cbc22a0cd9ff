"""Ingest through the gateway: normalization, limits, errors, isolation, RBAC."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from services.cli.stack import ProcessGroup
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually, ingest, stored_total

pytestmark = pytest.mark.integration


@pytest.fixture
async def tenant_tokens(api: Api) -> tuple[str, dict[str, str]]:
    # A long retention: the fixed dates some tests send must not become too old to ingest.
    tenant = await api.tenant("i", retention_days=3650)
    return tenant, await api.role_tokens(tenant)


async def test_single_event_is_normalized_and_stored(api: Api, tenant_tokens) -> None:
    tenant, tokens = tenant_tokens
    resp = await api.http.post(
        "/api/v1/logs",
        headers=bearer(tokens["writer"]),
        json={
            "severity": "Warn",
            "msg": "disk 91% full",
            "app_name": "agent",
            "hostname": "n1",
            "datetime": "2026-11-20T10:00:00+02:00",
            "tenant_id": "someone-else",
            "received_at": "1999-01-01T00:00:00Z",
            "workflow_id": "wf-1",
            "attributes": {"region": "eu"},
        },
    )
    assert resp.status_code == 202, resp.text
    event_id = resp.json()["id"]

    async def stored():
        r = await api.http.get(f"/api/v1/logs/{event_id}", headers=bearer(tokens["viewer"]))
        return r.json() if r.status_code == 200 else None

    event = await eventually(stored, within=30)
    assert event["tenant_id"] == tenant  # from the token, never the body
    assert event["level"] == "WARNING" and event["message"] == "disk 91% full"
    assert event["service"] == "agent" and event["host"] == "n1"
    assert event["timestamp"] == "2026-11-20T08:00:00.000Z"
    assert event["received_at"] != "1999-01-01T00:00:00Z"
    assert event["attributes"] == {"workflow_id": "wf-1", "region": "eu"}


async def test_bulk_json_and_ndjson(api: Api, tenant_tokens) -> None:
    _, tokens = tenant_tokens
    w = bearer(tokens["writer"])
    arr = await api.http.post(
        "/api/v1/logs/bulk", headers=w, json=[{"message": "a"}, {"action": "x.y", "id": "given-id"}]
    )
    assert arr.status_code == 202
    assert arr.json()["accepted"] == 2 and arr.json()["ids"][1] == "given-id"
    nd = await api.http.post(
        "/api/v1/logs/bulk",
        content=b'{"message":"b"}\n\n{"message":"c"}\n',
        headers={**w, "content-type": "application/x-ndjson"},
    )
    assert nd.status_code == 202 and nd.json()["accepted"] == 2

    async def four():
        return await stored_total(api.http, bearer(tokens["viewer"])) == 4

    await eventually(four, within=30)


@pytest.mark.parametrize(
    ("body", "index", "field"),
    [
        ([{"message": "ok"}, {"level": "loud", "message": "x"}], 1, "level"),
        ([{"message": "ok"}, {"service": "no message or action"}], 1, "message"),
        ([{"message": 5}], 0, "message"),
        ([{"message": "x", "timestamp": "yesterday"}], 0, "timestamp"),
        ([{"message": "x", "id": ""}], 0, "id"),
        ([{"message": "x", "id": "i" * 129}], 0, "id"),
        ([{"message": "x", "metadata": "not an object"}], 0, "metadata"),
        ([{"message": "x", "metadata": {"$where": "1"}}], 0, "metadata.$where"),
        (
            [{"message": "x", "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}}],
            0,
            "attributes.deep.a.b.c.d.e.f.g",
        ),
        ([{"message": "x", **{f"k{i}": i for i in range(300)}}], 0, "attributes"),
        (["not an object"], 0, "event"),
    ],
)
async def test_invalid_events_are_422_with_index_and_field(
    api: Api, tenant_tokens, body, index: int, field: str
) -> None:
    _, tokens = tenant_tokens
    resp = await api.http.post("/api/v1/logs/bulk", json=body, headers=bearer(tokens["writer"]))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    err = resp.json()["errors"][0]
    assert (err["index"], err["field"]) == (index, field)
    # all-or-nothing: the valid neighbour was not accepted either
    assert await stored_total(api.http, bearer(tokens["viewer"])) == 0


async def test_malformed_bodies(api: Api, tenant_tokens) -> None:
    _, tokens = tenant_tokens
    w = {**bearer(tokens["writer"]), "content-type": "application/json"}
    for path, content in [
        ("/api/v1/logs", b"{not json"),
        ("/api/v1/logs", b"[{}]"),
        ("/api/v1/logs/bulk", b"[]"),
        ("/api/v1/logs/bulk", b'{"message": "a"}\n{oops'),
    ]:
        resp = await api.http.post(path, content=content, headers=w)
        assert resp.status_code == 422, (path, content, resp.text)
        assert resp.json()["detail"]


async def test_size_limits_are_413(api: Api, tenant_tokens) -> None:
    _, tokens = tenant_tokens
    w = bearer(tokens["writer"])
    big = {"message": "x", "blob": "y" * (256 * 1024)}
    one = await api.http.post("/api/v1/logs", json=big, headers=w)
    assert one.status_code == 413 and "262,144" in one.json()["detail"]
    in_bulk = await api.http.post("/api/v1/logs/bulk", json=[{"message": "ok"}, big], headers=w)
    assert in_bulk.status_code == 413 and "Event 1" in in_bulk.json()["detail"]
    too_many = await api.http.post("/api/v1/logs/bulk", json=[{"message": "m"}] * 10_001, headers=w)
    assert too_many.status_code == 413 and "10,000" in too_many.json()["detail"]
    too_big = await api.http.post(
        "/api/v1/logs/bulk",
        content=b"[" + b",".join([b'{"message":"' + b"z" * 200_000 + b'"}'] * 53) + b"]",
        headers={**w, "content-type": "application/json"},
    )
    assert too_big.status_code == 413
    message_too_long = await api.http.post(
        "/api/v1/logs", json={"message": "m" * (64 * 1024 + 1)}, headers=w
    )
    assert message_too_long.status_code == 422
    assert await stored_total(api.http, bearer(tokens["viewer"])) == 0


LOG_ENDPOINTS = [
    # (method, path, params/body, roles allowed)
    ("POST", "/api/v1/logs", {"json": {"message": "m"}}, {"admin", "writer"}),
    ("POST", "/api/v1/logs/bulk", {"json": [{"message": "m"}]}, {"admin", "writer"}),
    ("GET", "/api/v1/logs", {}, {"admin", "auditor", "viewer"}),
    ("GET", "/api/v1/logs/stats", {}, {"admin", "auditor", "viewer"}),
    ("GET", "/api/v1/logs/export", {}, {"admin", "auditor"}),
    ("DELETE", "/api/v1/logs/cleanup", {"params": {"all": "true"}}, {"admin"}),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "allowed"), LOG_ENDPOINTS)
async def test_log_endpoints_follow_the_roles_table(
    api: Api, tenant_tokens, method: str, path: str, kwargs: dict, allowed: set[str]
) -> None:
    _, tokens = tenant_tokens
    assert (await api.http.request(method, path, **kwargs)).status_code == 401
    for role, token in tokens.items():
        resp = await api.http.request(method, path, headers=bearer(token), **kwargs)
        if role in allowed:
            assert resp.is_success, (role, resp.status_code, resp.text)
        else:
            assert resp.status_code == 403, (role, resp.status_code)
            assert resp.headers["content-type"] == "application/problem+json"


async def test_tenant_a_never_sees_or_touches_tenant_b(api: Api) -> None:
    a, b = await api.tenant("a"), await api.tenant("b")
    ta, tb = await api.role_tokens(a), await api.role_tokens(b)
    await ingest(
        api.http,
        bearer(tb["writer"]),
        [{"id": "secret-b", "message": "only b"}],
        bearer(tb["viewer"]),
    )
    spoof = {"X-Tenant-ID": b}
    for token in ta.values():
        for method, path, params in [
            ("GET", "/api/v1/logs", {}),
            ("GET", "/api/v1/logs/secret-b", {}),
            ("GET", "/api/v1/logs/stats", {}),
            ("GET", "/api/v1/logs/export", {}),
            ("DELETE", "/api/v1/logs/cleanup", {"all": "true"}),
            ("POST", "/api/v1/logs", {}),
        ]:
            resp = await api.http.request(
                method, path, params=params, headers=bearer(token, **spoof)
            )
            assert resp.status_code == 403, (method, path, resp.status_code)
    a_admin = bearer(ta["admin"])
    assert (await api.http.get("/api/v1/logs/secret-b", headers=a_admin)).status_code == 404
    assert (await api.http.get("/api/v1/logs", headers=a_admin)).json()["data"] == []
    stats = await api.http.get("/api/v1/logs/stats", headers=a_admin)
    assert stats.json()["total"] == 0
    export = await api.http.get("/api/v1/logs/export", headers=a_admin)
    assert "secret-b" not in export.text
    wipe = await api.http.delete("/api/v1/logs/cleanup", params={"all": "true"}, headers=a_admin)
    assert wipe.json() == {"deleted": 0}
    assert await stored_total(api.http, bearer(tb["viewer"])) == 1
    # a platform admin must name the tenant, and it must exist
    assert (await api.http.get("/api/v1/logs", headers=api.admin)).status_code == 400
    nowhere = await api.http.get("/api/v1/logs", headers={**api.admin, "X-Tenant-ID": "nope"})
    assert nowhere.status_code == 404
    platform = await api.http.get("/api/v1/logs", headers={**api.admin, "X-Tenant-ID": b})
    assert [e["id"] for e in platform.json()["data"]] == ["secret-b"]


async def test_pagination_stays_exact_while_events_arrive(api: Api, tenant_tokens) -> None:
    _, tokens = tenant_tokens
    reader, writer = bearer(tokens["viewer"]), bearer(tokens["writer"])
    first = [
        {
            "id": f"p{i:03d}",
            "message": f"m{i}",
            "timestamp": f"2026-11-01T00:{i // 60:02d}:{i % 60:02d}Z",
        }
        for i in range(120)
    ]
    await ingest(api.http, writer, first, reader)

    async def insert_late_events() -> None:
        for n in range(20):  # bounded, so the ascending walk below reaches an end
            resp = await api.http.post(
                "/api/v1/logs/bulk",
                headers=writer,
                json=[{"id": f"late{n}-{j}", "message": "late"} for j in range(5)],
            )
            assert resp.status_code == 202

    async def walk(**params: str | int) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            resp = await api.http.get("/api/v1/logs", params=query, headers=reader)
            assert resp.status_code == 200, resp.text
            page = resp.json()
            seen += [e["id"] for e in page["data"]]
            cursor = page["meta"]["next_cursor"]
            if not cursor:
                return seen

    inserting = asyncio.create_task(insert_late_events())
    newest_first = await walk(limit=7, to="2026-11-02T00:00:00Z")
    oldest_first = await walk(limit=9, sort="asc")
    await inserting
    assert newest_first == [e["id"] for e in reversed(first)]
    assert len(oldest_first) == len(set(oldest_first)), "a page repeated an event"
    assert oldest_first[:120] == [e["id"] for e in first], "a page skipped an event"


async def test_queue_down_is_503_and_nothing_is_half_accepted(
    api: Api, stack: ProcessGroup, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    stack.stop("elasticmq")
    try:
        one = await api.http.post(
            "/api/v1/logs", json={"id": "q1", "message": "m"}, headers=bearer(tokens["writer"])
        )
        assert one.status_code == 503
        assert one.headers["retry-after"].isdigit()
        assert one.headers["content-type"] == "application/problem+json"
        bulk = await api.http.post(
            "/api/v1/logs/bulk",
            json=[{"id": f"q{i}", "message": "m"} for i in range(2, 50)],
            headers=bearer(tokens["writer"]),
        )
        assert bulk.status_code == 503
    finally:
        stack.start("elasticmq")
        stack.wait(["elasticmq"], timeout=90)

    async def accepted():
        r = await api.http.post(
            "/api/v1/logs", json={"id": "after", "message": "m"}, headers=bearer(tokens["writer"])
        )
        return r.status_code == 202

    await eventually(accepted, within=60)

    async def stored():
        r = await api.http.get("/api/v1/logs/after", headers=bearer(tokens["viewer"]))
        return r.status_code == 200

    await eventually(stored, within=60)
    assert await stored_total(api.http, bearer(tokens["viewer"])) == 1  # none of the 503s


async def test_unknown_route_under_logs_is_404_problem(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.post("/api/v1/logs/nowhere/else")
    assert resp.status_code in (404, 405)
    assert resp.headers["content-type"] == "application/problem+json"


# --- 202 means stored: what the storage or the tenant would not keep is refused ------------


async def nothing_else_stored(api: Api, tokens: dict[str, str], refused: list[str]) -> None:
    """The refused requests queued nothing: a marker sent after them is stored alone."""
    reader = bearer(tokens["viewer"])
    await ingest(api.http, bearer(tokens["writer"]), [{"id": "marker", "message": "m"}], reader)
    for event_id in refused:
        resp = await api.http.get(f"/api/v1/logs/{event_id}", headers=reader)
        assert resp.status_code == 404, (event_id, resp.text)
    assert await stored_total(api.http, reader) == 1


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


# (event, field named in the 422) — each is an event the storage cannot hold, cannot
# return by id, or would lose at once; each was a 202 (or a 500) before.
REFUSED = [
    ({"message": "x", "attributes": {"x": [[1, 2]]}}, "attributes.x[0]"),
    ({"message": "x", "matrix": [[]]}, "attributes.matrix[0]"),
    ({"message": "x", "metadata": {"rows": [{"cells": [[1]]}]}}, "metadata.rows[0].cells[0]"),
    ({"message": "x", "n": 2**63}, "attributes.n"),
    ({"message": "x", "attributes": {"n": [1, 2**64 - 1]}}, "attributes.n[1]"),
    ({"message": "x", "id": "a/b"}, "id"),
    ({"message": "x", "id": "a\x00b"}, "id"),
    ({"message": "x", "id": "line\nbreak"}, "id"),
    ({"message": "x", "id": "stats"}, "id"),
    ({"message": "x", "id": ".."}, "id"),
    ({"message": "x", "timestamp": "0001-01-01T00:00:00+14:00"}, "timestamp"),
    ({"message": "x", "timestamp": "9999-12-31T23:59:59-14:00"}, "timestamp"),
    ({"message": "x", "timestamp": -1e20}, "timestamp"),
    ({"message": "x", "stage": "a", "attributes": {"stage": "b"}}, "stage"),
]


async def test_events_that_cannot_be_kept_are_422_and_nothing_is_queued(
    api: Api, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    w = bearer(tokens["writer"])
    refused = []
    for n, (event, field) in enumerate(REFUSED):
        sibling = {"id": f"sibling-{n}", "message": "valid neighbour"}
        refused.append(sibling["id"])
        bulk = await api.http.post("/api/v1/logs/bulk", json=[sibling, event], headers=w)
        assert bulk.status_code == 422, (event, bulk.status_code, bulk.text)
        assert bulk.headers["content-type"] == "application/problem+json"
        errors = bulk.json()["errors"]
        assert [(e["index"], e["field"]) for e in errors] == [(1, field)], (event, errors)
        one = await api.http.post("/api/v1/logs", json=event, headers=w)
        assert one.status_code == 422, (event, one.status_code, one.text)
        assert one.json()["errors"][0]["field"] == field
    await nothing_else_stored(api, tokens, refused)


DEEP = b"[" * 500 + b"]" * 500
HOSTILE = [
    # each was a 500, and a 500 cost the next caller on the same gateway a 502
    ("/api/v1/logs", b'{"message":"m","timestamp":"0001-01-01T00:00:00+14:00"}'),
    ("/api/v1/logs", b'{"message":' + DEEP + b',"msg":' + DEEP + b"}"),  # a deep comparison
    (  # a body over 256 KiB holding an event deeper than orjson writes (255 levels)
        "/api/v1/logs/bulk",
        b'[{"message":"' + b"x" * 200_000 + b'"},{"message":"m","x":' + DEEP + b"}]",
    ),
]


async def test_hostile_ingest_is_422_and_the_next_request_succeeds(api: Api, tenant_tokens) -> None:
    _, tokens = tenant_tokens
    w = {**bearer(tokens["writer"]), "content-type": "application/json"}
    for path, body in HOSTILE * 2:
        bad = await api.http.post(path, content=body, headers=w)
        assert bad.status_code == 422, (body[:80], bad.status_code, bad.text)
        assert bad.headers["content-type"] == "application/problem+json"
        ok = await api.http.post("/api/v1/logs", json={"message": "next"}, headers=w)
        assert ok.status_code == 202, ok.text


async def test_values_the_storage_does_keep_are_accepted_and_read_back_intact(
    api: Api, tenant_tokens
) -> None:
    """The edges of what the storage holds: found on FerretDB v1 (the test stack's
    storage), and all valid BSON for MongoDB."""
    _, tokens = tenant_tokens
    attributes = {
        "nested_in_objects": [{"a": [1, 2]}, {"b": []}],
        "int_max": 2**63 - 1,
        "int_min": -(2**63),
        "big_float": 1e308,
        "nul_inside": "a\x00b",
        "control\u0001key": "\u0007",
        "ключ": "значение 😀",
        "": "empty key",
    }
    ids = await ingest(
        api.http,
        bearer(tokens["writer"]),
        [{"id": "edges", "message": "m", **attributes}],
        bearer(tokens["viewer"]),
    )
    assert ids == ["edges"]
    got = await api.http.get("/api/v1/logs/edges", headers=bearer(tokens["viewer"]))
    assert got.status_code == 200
    assert got.json()["attributes"] == attributes


@pytest.mark.parametrize(
    ("path", "body", "content_type", "index", "field"),
    [
        ("/api/v1/logs", b'{"message":"a","message":"b"}', "application/json", 0, "message"),
        (
            "/api/v1/logs/bulk",
            b'[{"message":"ok"},{"message":"m","attributes":{"x":1,"x":2}}]',
            "application/json",
            1,
            "attributes.x",
        ),
        (
            "/api/v1/logs/bulk",
            b'{"message":"ok"}\n\n{"message":"m","level":"info","ctx":{"k":"\\\\","k":"\\""}}\n',
            "application/x-ndjson",
            1,
            "ctx.k",
        ),
        (
            "/api/v1/logs/bulk",
            b'[{"message":"ok","\\u0061":1,"a":2}]',
            "application/json",
            0,
            "a",
        ),
    ],
)
async def test_duplicate_keys_are_422_naming_event_and_key(
    api: Api, tenant_tokens, path: str, body: bytes, content_type: str, index: int, field: str
) -> None:
    _, tokens = tenant_tokens
    resp = await api.http.post(
        path, content=body, headers={**bearer(tokens["writer"]), "content-type": content_type}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"] == [
        {
            "index": index,
            "field": field,
            "message": f"the key '{field.rsplit('.', 1)[-1]}' appears more than once in one "
            "object; JSON keys must be unique",
        }
    ]
    await nothing_else_stored(api, tokens, [])


async def test_events_older_than_the_tenants_retention_are_refused(api: Api) -> None:
    tenant = await api.tenant("r", retention_days=7)
    tokens = await api.role_tokens(tenant)
    w = bearer(tokens["writer"])
    old, kept = ago(days=8), ago(days=6)
    bulk = await api.http.post(
        "/api/v1/logs/bulk",
        json=[
            {"id": "kept-sibling", "message": "m", "timestamp": kept},
            {"id": "too-old", "message": "m", "timestamp": old},
        ],
        headers=w,
    )
    assert bulk.status_code == 422, bulk.text
    [error] = bulk.json()["errors"]
    assert (error["index"], error["field"]) == (1, "timestamp")
    assert "older than this tenant's retention of 7 days" in error["message"]
    assert "it would be deleted at once" in error["message"]
    assert bulk.json()["detail"].startswith(
        "1 event(s) invalid, nothing was accepted; first: event 1, timestamp: "
    )
    epoch_ms = int((datetime.now(UTC) - timedelta(days=8)).timestamp() * 1000)
    one = await api.http.post("/api/v1/logs", json={"message": "m", "time": epoch_ms}, headers=w)
    assert one.status_code == 422 and "retention of 7 days" in one.json()["detail"]
    future = await api.http.post(
        "/api/v1/logs", json={"message": "m", "timestamp": ago(days=-2)}, headers=w
    )
    assert future.status_code == 422 and "ahead of the server's clock" in future.json()["detail"]
    await nothing_else_stored(api, tokens, ["kept-sibling", "too-old"])
    ids = await ingest(
        api.http,
        w,
        [{"id": "six-days", "message": "m", "timestamp": kept}],
        bearer(tokens["viewer"]),
    )
    assert ids == ["six-days"]


async def test_a_longer_retention_takes_effect_for_ingest(api: Api) -> None:
    tenant = await api.tenant("r", retention_days=7)
    tokens = await api.role_tokens(tenant)
    event = {"id": "ten-days", "message": "m", "timestamp": ago(days=10)}
    w = bearer(tokens["writer"])
    assert (await api.http.post("/api/v1/logs", json=event, headers=w)).status_code == 422
    patched = await api.http.patch(
        f"/api/v1/tenants/{tenant}", json={"retention_days": 30}, headers=api.admin
    )
    assert patched.status_code == 200

    async def accepted() -> bool:
        resp = await api.http.post("/api/v1/logs", json=event, headers=w)
        assert resp.status_code in (202, 422), resp.text
        return resp.status_code == 202

    await eventually(accepted, within=15)  # via the invalidation bus: the cache lasts 300 s here


async def test_ndjson_body_with_numbers_and_escapes_is_accepted(api: Api, tenant_tokens) -> None:
    """The duplicate-key pre-check must not refuse what is fine (escaped quotes and
    backslashes, unicode escapes, the same key in different objects)."""
    _, tokens = tenant_tokens
    lines = [
        {"message": 'say "hi" \\ C:\\dir\\', "a": {"k": 1}, "b": {"k": 1}},
        {"message": '\u00e9\\"', 'k"q': "\\\\", "l": [{"k": 1}, {"k": 2}]},
    ]
    body = b"\n".join(orjson.dumps(line) for line in lines)
    resp = await api.http.post(
        "/api/v1/logs/bulk",
        content=body,
        headers={**bearer(tokens["writer"]), "content-type": "application/x-ndjson"},
    )
    assert resp.status_code == 202, resp.text
