"""Search, get, stats, export and cleanup against the real pipeline and storage."""

from __future__ import annotations

import contextlib
import csv
import io
import statistics
import time
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.cli.stack import ProcessGroup
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually, extra_log_service, ingest, stored_total

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
        {"cursor": ""},
        {"service": ""},
        {"attributes.stage": ""},
        {"from": ts(1), "to": ts(2)},  # from after to
        {"from": ts(1), "to": ts(1)},  # to is exclusive: an empty range
        {"timestamp": "2020-01-01", "from": ts(1)},  # the day lies outside from
        {"q": "x" * 257},
        {"user_agent": "x" * 257},
        {"from": "0001-01-01T00:00:00+14:00"},
        {"to": "9999-12-31T23:59:59-14:00"},
    ],
)
async def test_malformed_filters_are_422_never_match_all(api: Api, populated, params) -> None:
    _, tokens = populated
    resp = await api.http.get("/api/v1/logs", params=params, headers=bearer(tokens["viewer"]))
    assert resp.status_code == 422, (params, resp.text)
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["errors"][0]["field"]


OUT_OF_RANGE = [("from", "0001-01-01T00:00:00+14:00"), ("to", "9999-12-31T23:59:59-14:00")]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
@pytest.mark.parametrize("path", ["/api/v1/logs", "/api/v1/logs/stats", "/api/v1/logs/export"])
async def test_times_beyond_the_calendar_are_422_on_every_read(
    api: Api, populated, path: str, name: str, value: str
) -> None:
    """In UTC these are moments in year 0 and year 10000: they were a 500 (OverflowError)."""
    _, tokens = populated
    resp = await api.http.get(path, params={name: value}, headers=bearer(tokens["auditor"]))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["errors"][0]["field"] == name
    assert "9999-12-31" in resp.json()["detail"]
    # the gateway's connection to the log service survived: the next request is answered
    after = await api.http.get("/api/v1/logs", headers=bearer(tokens["viewer"]))
    assert after.status_code == 200


@pytest.mark.parametrize(
    ("name", "value"), [*OUT_OF_RANGE, ("before", "0001-01-01T00:00:00+14:00")]
)
async def test_times_beyond_the_calendar_are_422_on_cleanup(
    api: Api, populated, name: str, value: str
) -> None:
    _, tokens = populated
    resp = await api.http.delete(
        "/api/v1/logs/cleanup", params={name: value, "all": "true"}, headers=bearer(tokens["admin"])
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == name
    assert await stored_total(api.http, bearer(tokens["viewer"])) == len(FIXTURE)  # nothing gone


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
async def test_times_beyond_the_calendar_are_refused_by_the_stream(
    cfg, populated, name: str, value: str
) -> None:
    import websockets

    from tests.integration.broadcast.test_stream import ws_url

    _, tokens = populated
    url = ws_url(cfg.gateway_url, token=tokens["viewer"], **{name: value})
    async with websockets.connect(url) as ws:
        frame = orjson.loads(await ws.recv())
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4422, (ws.close_code, frame)
    assert frame["errors"][0]["field"] == name


async def test_the_last_day_of_the_calendar_is_an_ordinary_day(api: Api, populated) -> None:
    """timestamp=9999-12-31 ends at 10000-01-01, which is no datetime: it was a 500."""
    _, tokens = populated
    auditor = bearer(tokens["auditor"])
    for path in ("/api/v1/logs", "/api/v1/logs/stats", "/api/v1/logs/export"):
        resp = await api.http.get(path, params={"timestamp": "9999-12-31"}, headers=auditor)
        assert resp.status_code == 200, (path, resp.text)
    assert (
        await api.http.get("/api/v1/logs", params={"timestamp": "9999-12-31"}, headers=auditor)
    ).json()["data"] == []
    first_day = await api.http.get(
        "/api/v1/logs", params={"from": "0001-01-01T00:00:00Z"}, headers=auditor
    )
    assert len(first_day.json()["data"]) == len(FIXTURE)


async def test_a_long_q_is_refused_at_once_naming_the_limit(api: Api, populated) -> None:
    """5,000 characters ran 30 s and ended in a 504: FerretDB compiles the pattern anew
    for every event it scans."""
    _, tokens = populated
    for name in ("q", "user_agent"):
        resp = await api.http.get(
            "/api/v1/logs", params={name: "x" * 5000}, headers=bearer(tokens["viewer"])
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["detail"] == f"{name}: at most 256 characters (got 5000)"
    at_limit = await api.http.get(
        "/api/v1/logs", params={"q": "é" * 256}, headers=bearer(tokens["viewer"])
    )
    assert at_limit.status_code == 200 and at_limit.json()["data"] == []


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

    from services.core.logs.filters import parse_params

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


# --- heavy searches: a point read stays cheap, a stopped search stops ------------------

HEAVY_EVENTS = 8000
BIG_EVERY = 20  # one event in 20 carries a 64 KB message: 400 of them, 26 MB in all
# As long as q may be and found nowhere, so every event of the collection is read.
HEAVY_Q = ("paymentx " * 40)[:256]


def _heavy_event(i: int) -> dict:
    words = ("payment", "failed", "request", "served", "user", "login", "cache", "slow")
    size = 8000 if i % BIG_EVERY == 0 else 12
    message = " ".join(words[(i * 7 + k) % len(words)] for k in range(size))[:65_000]
    return {"id": f"h{i}", "message": message, "service": "api"}


@pytest.fixture(scope="module")
async def heavy(cfg, admin_token):
    """A tenant with enough events that a substring search reads for seconds on FerretDB."""
    async with httpx.AsyncClient(base_url=cfg.gateway_url, timeout=120) as http:
        api = Api(http, admin_token)
        tenant = await api.tenant("heavy", retention_days=3650)
        tokens = await api.role_tokens(tenant)
        events = [_heavy_event(i) for i in range(HEAVY_EVENTS)]
        await ingest(http, bearer(tokens["writer"]), events, bearer(tokens["viewer"]))
        yield tenant, tokens
        # FerretDB reads the whole collection for every query but `_id` lookups (DESIGN
        # §6): leave it small for the tests that run after this module.
        await http.delete(
            "/api/v1/logs/cleanup", params={"all": "true"}, headers=bearer(tokens["admin"])
        )


@pytest.fixture(scope="module")
def log_1s(stack: ProcessGroup) -> Iterator[str]:
    """A second log service whose queries may run 1 s in the storage (504 after that)."""
    with extra_log_service(stack, "log-1s", LOGSERVER_QUERY_TIMEOUT_SECONDS="1") as url:
        yield url


async def _seconds(request: Awaitable[httpx.Response], status: int) -> float:
    start = time.monotonic()
    resp = await request
    assert resp.status_code == status, resp.text
    return time.monotonic() - start


async def test_a_timed_out_search_leaves_the_storage_free(api: Api, heavy, log_1s: str) -> None:
    """After a 504 the storage answers a read by id at once. It took 15-28 s: the read
    filtered on `_id` and `tenant_id`, which FerretDB v1 answers by reading the whole
    collection, as a search does. Compared with such a reading search (medians of
    three), not with a fixed time, so a loaded machine slows both sides alike."""
    _, tokens = heavy
    viewer = bearer(tokens["viewer"])
    gets, reads = [], []
    async with httpx.AsyncClient(base_url=log_1s, timeout=120) as short:
        for i in range(3):
            timed_out = await short.get("/api/v1/logs", params={"q": HEAVY_Q}, headers=viewer)
            assert timed_out.status_code == 504, timed_out.text
            assert "1 s" in timed_out.json()["detail"]
            # among the last stored: a lookup that reads the collection in order finds an
            # early event early, so only a late one shows the difference
            late = f"/api/v1/logs/h{HEAVY_EVENTS - 1 - i}"
            gets.append(await _seconds(short.get(late, headers=viewer), 200))
            # a search that reads every event (a short q, found nowhere), 30 s allowed
            scan = api.http.get("/api/v1/logs", params={"q": "zzzq", "limit": 1}, headers=viewer)
            reads.append(await _seconds(scan, 200))
    assert statistics.median(gets) * 5 < statistics.median(reads), (gets, reads)


def _requests_with_status(metrics: str, route: str, status: int) -> float:
    for family in text_string_to_metric_families(metrics):
        if family.name != "logserver_http_requests":
            continue
        return sum(
            s.value
            for s in family.samples
            if s.name.endswith("_total")
            and s.labels.get("route") == route
            and s.labels.get("status") == str(status)
        )
    return 0.0


async def test_a_search_whose_client_left_is_stopped(api: Api, heavy, cfg) -> None:
    """A client that gives up does not leave its search running for nobody: the log
    service cancels the query when the connection closes (and records a 499). On MongoDB
    that ends the operation too (the server kills a find whose connection closed);
    FerretDB v1 does not look at the connection mid-command and reads on until
    maxTimeMS (LOGSERVER_QUERY_TIMEOUT_SECONDS)."""
    _, tokens = heavy
    metrics_url = cfg.service_url("log") + "/metrics"

    async def left() -> float:
        return _requests_with_status((await api.http.get(metrics_url)).text, "/api/v1/logs", 499)

    before = await left()
    with pytest.raises(httpx.ReadTimeout):  # the search outlasts a 1 s client
        await api.http.get(
            "/api/v1/logs", params={"q": HEAVY_Q}, headers=bearer(tokens["viewer"]), timeout=1
        )

    async def stopped() -> bool:
        return await left() > before

    await eventually(stopped, within=10)
