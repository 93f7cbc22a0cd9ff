"""Per-tenant limits in the log service: ingest rate, query concurrency and range, export
size, the usage endpoint, changes on two replicas, and Redis away (limits fail open)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.cli.stack import ProcessGroup, StackConfig
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import (
    eventually,
    extra_log_service,
    free_port,
    ingest,
    set_limits,
    stored_total,
)

pytestmark = pytest.mark.integration
PROBLEMS = "https://logserver.dev/problems/"


async def usage(http: httpx.AsyncClient, token: str) -> dict:
    resp = await http.get("/api/v1/logs/usage", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    return resp.json()


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def events(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "message": f"event {i}", "service": "lim"} for i in range(n)]


# --- ingest rate -----------------------------------------------------------------------


async def test_a_tenant_over_its_rate_gets_429_while_another_keeps_getting_202(
    api: Api,
) -> None:
    # 2 events/s: the bucket takes 10 s to refill the 20 of the refused request, so the
    # refusal does not depend on how fast a (loaded) machine sends the second request
    # after the first (at 10/s, 2 s between them was enough to let it through).
    noisy = await api.tenant("noisy", limits={"ingest_events_per_second": 2, "ingest_burst": 20})
    quiet = await api.tenant("quiet")
    n_tokens, q_tokens = await api.role_tokens(noisy), await api.role_tokens(quiet)
    writer = bearer(n_tokens["writer"])

    first = await api.http.post("/api/v1/logs/bulk", json=events("ok", 20), headers=writer)
    assert first.status_code == 202, first.text  # the burst: a full bucket
    refused = await api.http.post("/api/v1/logs/bulk", json=events("no", 20), headers=writer)
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 11  # 20 events at 2/s
    problem = refused.json()
    assert problem["type"] == PROBLEMS + "ingest-rate-limited"
    assert problem["limit"] == "ingest_events_per_second" and problem["limit_value"] == 2
    assert "2 events/s" in problem["detail"] and "ingest_events_per_second" in problem["detail"]
    one = {"message": "x"}
    sent = [api.http.post("/api/v1/logs", json=one, headers=writer) for _ in range(15)]
    singles = [r.status_code for r in await asyncio.gather(*sent)]
    assert 429 in singles  # single events are limited too (the bucket refills 1 per 0.5 s)
    n_singles = singles.count(202)

    for i in range(5):  # the other tenant is not affected
        resp = await api.http.post(
            "/api/v1/logs/bulk", json=events(f"q{i}", 20), headers=bearer(q_tokens["writer"])
        )
        assert resp.status_code == 202, resp.text

    # After Retry-After the same request passes; nothing of the refused one was stored.
    async def admitted() -> bool:
        resp = await api.http.post("/api/v1/logs/bulk", json=events("later", 20), headers=writer)
        assert resp.status_code in (202, 429), resp.text
        return resp.status_code == 202

    await eventually(admitted, within=retry_after + 30, every=0.5)
    reader = bearer(n_tokens["viewer"])

    async def all_stored() -> bool:
        return await stored_total(api.http, reader) >= 40 + n_singles

    await eventually(all_stored, within=60)
    assert await stored_total(api.http, reader) == 40 + n_singles
    assert await stored_total(api.http, reader, q="event") == 40
    gone = await api.http.get("/api/v1/logs/no-0", headers=reader)
    assert gone.status_code == 404

    seen = await usage(api.http, n_tokens["writer"])  # any role of the tenant may look
    assert seen["ingested"]["events"] == 40 + n_singles
    assert seen["refused"]["ingest_events_per_second"] >= 2
    assert seen["limits"]["ingest_events_per_second"] == 2
    assert (await usage(api.http, q_tokens["viewer"]))["refused"] == {}


async def test_the_bytes_rate_and_the_daily_quota_refuse_with_their_own_type(api: Api) -> None:
    tenant = await api.tenant("bytes", limits={"ingest_bytes_per_second": 2000})
    tokens = await api.role_tokens(tenant)
    writer = bearer(tokens["writer"])
    big = [{"message": "x" * 500} for _ in range(4)]  # ~2.3 KB queued: more than 2000 B
    assert (await api.http.post("/api/v1/logs/bulk", json=big, headers=writer)).status_code == 202
    refused = await api.http.post("/api/v1/logs/bulk", json=big, headers=writer)
    assert refused.status_code == 429
    assert refused.json()["type"] == PROBLEMS + "ingest-rate-limited"
    assert refused.json()["limit"] == "ingest_bytes_per_second"

    quota = await api.tenant("quota", limits={"daily_events": 5})
    q_tokens = await api.role_tokens(quota)
    q_writer = bearer(q_tokens["writer"])
    ok = await api.http.post("/api/v1/logs/bulk", json=events("d", 4), headers=q_writer)
    assert ok.status_code == 202
    over = await api.http.post("/api/v1/logs/bulk", json=events("e", 2), headers=q_writer)
    assert over.status_code == 429  # all or nothing: 4 + 2 > 5, none of the 2 taken
    assert over.json()["type"] == PROBLEMS + "daily-quota-exceeded"
    assert over.json()["limit"] == "daily_events" and over.json()["limit_value"] == 5
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(int(over.headers["retry-after"]) - (midnight - now).total_seconds()) < 60
    last = await api.http.post("/api/v1/logs", json={"message": "fifth"}, headers=q_writer)
    assert last.status_code == 202
    seen = await usage(api.http, q_tokens["viewer"])
    assert seen["ingested"]["events"] == 5 and seen["refused"] == {"daily_events": 1}


# --- queries ---------------------------------------------------------------------------


def _export_that_is_never_read(url: str, token: str) -> socket.socket:
    """An export request whose client reads nothing, with a tiny TCP window: once the
    socket buffers are full the log service waits, so the export stays open."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET /api/v1/logs/export?format=ndjson HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n".encode()
    )
    return sock


Probe = Callable[[], Awaitable[httpx.Response | None]]


def _status_line(sock: socket.socket) -> str:
    """The response's status line, reading no more than its first bytes (the rest of
    the export stays unread, so the service keeps waiting on the full socket)."""
    sock.settimeout(120)
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(64)
        if not chunk:
            break
        head += chunk
    return head.split(b"\r\n", 1)[0].decode(errors="replace")


async def hold_a_query_slot(url: str, token: str) -> socket.socket:
    """An export that holds its query slots until the socket is closed.

    The export sends its status line only once it holds them (they are taken before
    the response starts), so the slot is held when this returns; without waiting for
    it, a probe could take the slot first and the export be the one refused (429, or
    503 after the queue wait), leaving nothing to hold it: probes then never see the
    limit (on a loaded machine a probe's scan is slow, and that race is often lost).
    """
    sock = _export_that_is_never_read(url, token)
    status = await asyncio.to_thread(_status_line, sock)
    if not status.startswith("HTTP/1.1 200"):
        sock.close()
        raise AssertionError(f"the export meant to hold a query slot answered {status!r}")
    return sock


@pytest.fixture(scope="module")
async def big_tenant(cfg: StackConfig, admin_token: str):
    """A tenant whose export is about 10 MB: more than the socket buffers hold (the
    sender's grows to 4 MB on Linux: a 4 MB export was sometimes all buffered, and
    done, before the test looked)."""
    async with httpx.AsyncClient(base_url=cfg.gateway_url, timeout=120) as http:
        api = Api(http, admin_token)
        tenant = await api.tenant("big")
        tokens = await api.role_tokens(tenant)
        filler = "lorem ipsum " * 200
        batch = [{"id": f"b{i}", "message": filler, "service": "big"} for i in range(4000)]
        await ingest(http, bearer(tokens["writer"]), batch, bearer(tokens["viewer"]))
        yield tenant, tokens
        await http.delete(
            "/api/v1/logs/cleanup", params={"all": "true"}, headers=bearer(tokens["admin"])
        )


async def test_a_tenant_at_its_query_concurrency_gets_429_while_another_searches(
    api: Api, cfg: StackConfig, big_tenant
) -> None:
    tenant, tokens = big_tenant
    other = await api.tenant("other")
    o_tokens = await api.role_tokens(other)
    await set_limits(api, tenant, max_concurrent_queries=1)
    viewer = bearer(tokens["viewer"])
    log_url = cfg.service_url("log")
    sock = await hold_a_query_slot(log_url, tokens["admin"])
    try:

        def refused_at_limit(path: str, **params: str) -> Probe:
            # Polled, not asked once: on a loaded machine a slot check may time out and
            # let the query through by design (limits fail open, then pause a second).
            async def check() -> httpx.Response | None:
                resp = await api.http.get(path, params=params, headers=viewer)
                assert resp.status_code in (200, 429), resp.text
                return resp if resp.status_code == 429 else None

            return check

        refused = await eventually(refused_at_limit("/api/v1/logs", limit="1"), within=60)
        assert refused.headers["retry-after"] == "1"
        problem = refused.json()
        assert problem["type"] == PROBLEMS + "query-concurrency"
        assert problem["limit"] == "max_concurrent_queries" and problem["limit_value"] == 1
        stats = await eventually(refused_at_limit("/api/v1/logs/stats"), within=60)
        assert stats.json()["type"] == PROBLEMS + "query-concurrency"
        assert (await usage(api.http, tokens["viewer"]))["running_queries"] == 1
        # another tenant's search answers meanwhile
        resp = await api.http.get("/api/v1/logs", headers=bearer(o_tokens["viewer"]))
        assert resp.status_code == 200, resp.text
    finally:
        sock.close()

    async def freed() -> bool:  # the export ended with its client: its slot is free
        resp = await api.http.get("/api/v1/logs", params={"limit": 1}, headers=viewer)
        return resp.status_code == 200

    await eventually(freed, within=60)
    assert (await usage(api.http, tokens["viewer"]))["refused"]["max_concurrent_queries"] >= 2


async def test_the_process_cap_makes_queries_wait_then_503(
    api: Api, stack: ProcessGroup, big_tenant
) -> None:
    tenant, tokens = big_tenant
    await set_limits(api, tenant, max_concurrent_queries=None)
    other = await api.tenant("wait")
    o_viewer = bearer((await api.role_tokens(other))["viewer"])
    env = {"LOGSERVER_QUERY_MAX_CONCURRENT": "1", "LOGSERVER_QUERY_QUEUE_SECONDS": "1"}
    with extra_log_service(stack, "log-cap1", **env) as url:
        sock = await hold_a_query_slot(url, tokens["admin"])  # the process's one slot
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as direct:
                # The slot is this process's own (no Redis, nothing fails open): the
                # first query waits its 1 s turn and is refused.
                resp = await direct.get("/api/v1/logs", headers=o_viewer)
                assert resp.status_code == 503, resp.text
                assert resp.json()["type"] == PROBLEMS + "server-busy"
                assert "1 s" in resp.json()["detail"] and resp.headers["retry-after"]
        finally:
            sock.close()
        async with httpx.AsyncClient(base_url=url, timeout=30) as direct:

            async def served() -> bool:
                return (await direct.get("/api/v1/logs", headers=o_viewer)).status_code == 200

            await eventually(served, within=60)


async def test_query_range_limit_is_422_with_its_own_type(api: Api) -> None:
    tenant = await api.tenant("range", limits={"max_query_range_hours": 24})
    tokens = await api.role_tokens(tenant)
    viewer = bearer(tokens["auditor"])  # may search and export
    now = datetime.now(UTC)
    recent = {"from": (now - timedelta(hours=2)).isoformat()}
    wide = {"from": (now - timedelta(hours=49)).isoformat()}
    for path in ("/api/v1/logs", "/api/v1/logs/stats", "/api/v1/logs/export"):
        unbounded = await api.http.get(path, headers=viewer)
        assert unbounded.status_code == 422, (path, unbounded.text)
        problem = unbounded.json()
        assert problem["type"] == PROBLEMS + "query-range"
        assert problem["limit"] == "max_query_range_hours" and problem["limit_value"] == 24
        assert "from=" in problem["detail"]
        too_wide = await api.http.get(path, params=wide, headers=viewer)
        assert too_wide.status_code == 422 and "about 49 hours" in too_wide.json()["detail"]
        day = await api.http.get(path, params={"timestamp": now.date().isoformat()}, headers=viewer)
        assert day.status_code == 200, (path, day.text)
        ok = await api.http.get(path, params=recent, headers=viewer)
        assert ok.status_code == 200, (path, ok.text)
    refused = (await usage(api.http, tokens["viewer"]))["refused"]
    assert refused == {"max_query_range_hours": 6}


async def test_an_export_is_cut_at_the_tenants_cap_and_says_so(api: Api) -> None:
    tenant = await api.tenant("cap", limits={"max_export_events": 3})
    tokens = await api.role_tokens(tenant)
    await ingest(api.http, bearer(tokens["writer"]), events("x", 5), bearer(tokens["viewer"]))
    auditor = bearer(tokens["auditor"])

    def lines(resp: httpx.Response) -> list[dict]:
        return [orjson.loads(line) for line in resp.content.split(b"\n") if line]

    cut = await api.http.get("/api/v1/logs/export", headers=auditor)
    assert cut.status_code == 200
    assert len(lines(cut)) == 3
    assert cut.headers["x-export-limit"] == "3" and cut.headers["x-export-truncated"] == "true"
    fits = await api.http.get("/api/v1/logs/export", params={"service": "none"}, headers=auditor)
    assert fits.headers["x-export-truncated"] == "false" and lines(fits) == []
    smaller = await api.http.get("/api/v1/logs/export", params={"limit": 2}, headers=auditor)
    assert len(lines(smaller)) == 2 and "x-export-limit" not in smaller.headers
    await set_limits(api, tenant, max_export_events=0)  # 0: no limit
    whole = await api.http.get("/api/v1/logs/export", headers=auditor)
    assert len(lines(whole)) == 5 and "x-export-truncated" not in whole.headers


# --- the usage endpoint ----------------------------------------------------------------


async def test_usage_is_the_callers_own_tenants(api: Api) -> None:
    tenant = await api.tenant("use")
    other = await api.tenant("use")
    tokens, o_tokens = await api.role_tokens(tenant), await api.role_tokens(other)
    await ingest(api.http, bearer(tokens["writer"]), events("u", 30))
    for role in ("admin", "auditor", "viewer", "writer"):
        seen = await usage(api.http, tokens[role])
        assert seen["tenant"] == tenant
        assert seen["ingested"]["events"] == 30 and seen["ingested"]["bytes"] > 30 * 20
        assert seen["rate"]["events_per_second"] > 0
        assert seen["day"] == datetime.now(UTC).date().isoformat()
        assert set(seen["limits"]) >= {"ingest_events_per_second", "max_concurrent_tails"}
    cross = await api.http.get(
        "/api/v1/logs/usage", headers=bearer(o_tokens["viewer"], **{"X-Tenant-ID": tenant})
    )
    assert cross.status_code == 403
    assert (await api.http.get("/api/v1/logs/usage")).status_code == 401
    as_admin = await api.http.get("/api/v1/logs/usage", headers={**api.admin, "X-Tenant-ID": other})
    assert as_admin.status_code == 200 and as_admin.json()["ingested"]["events"] == 0


# --- replicas and Redis ------------------------------------------------------------------


async def test_a_limits_patch_applies_on_both_replicas_within_a_second(
    api: Api, cfg: StackConfig, stack: ProcessGroup
) -> None:
    tenant = await api.tenant("two")
    viewer = bearer((await api.role_tokens(tenant))["viewer"])
    with extra_log_service(stack, "log-b") as second:
        replicas = [cfg.service_url("log"), second]
        async with httpx.AsyncClient(timeout=30) as http:
            for url in replicas:  # both have read (and cached) the tenant's limits
                assert (await http.get(url + "/api/v1/logs", headers=viewer)).status_code == 200
            await set_limits(api, tenant, max_query_range_hours=1)
            patched = time.monotonic()

            async def refused_by(url: str) -> float:
                while True:
                    resp = await http.get(url + "/api/v1/logs", headers=viewer)
                    if resp.status_code == 422:
                        assert resp.json()["type"] == PROBLEMS + "query-range"
                        return time.monotonic() - patched
                    assert resp.status_code == 200, resp.text
                    await asyncio.sleep(0.02)

            delays = await asyncio.wait_for(
                asyncio.gather(*(refused_by(url) for url in replicas)), timeout=10
            )
    # credential_cache_seconds is 300 s in the test stack: only the invalidation can do it
    assert max(delays) < 1.0, delays


async def test_limits_fail_open_when_redis_is_away(api: Api, stack: ProcessGroup) -> None:
    tenant = await api.tenant("open", limits={"ingest_events_per_second": 1, "ingest_burst": 1})
    tokens = await api.role_tokens(tenant)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with extra_log_service(stack, "log-noredis", LOGSERVER_REDIS_URL=nowhere) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as direct:
            unenforced = "logserver_limits_unenforced_total"
            before = metric((await direct.get("/metrics")).text, unenforced)
            for i in range(3):  # far over 1 event/s: let through, Redis cannot count them
                resp = await direct.post(
                    "/api/v1/logs/bulk", json=events(f"o{i}", 5), headers=bearer(tokens["writer"])
                )
                assert resp.status_code == 202, resp.text
            search = await direct.get("/api/v1/logs", headers=bearer(tokens["viewer"]))
            assert search.status_code == 200, search.text
            text = (await direct.get("/metrics")).text
            assert metric(text, unenforced, check="ingest") >= 3
            assert metric(text, unenforced) > before
            no_usage = await direct.get("/api/v1/logs/usage", headers=bearer(tokens["viewer"]))
            assert no_usage.status_code == 503 and "fail open" in no_usage.json()["detail"]
    assert "limits not enforced" in stack.tail("log-noredis", 200)


async def test_a_burst_of_concurrent_requests_is_limited_not_let_through(
    api: Api, cfg: StackConfig
) -> None:
    """Hundreds of a tenant's requests at once: each is checked (none passes unchecked
    because the limiter ran out of Redis connections), and only the burst gets in."""
    tenant = await api.tenant("burst", limits={"ingest_events_per_second": 5, "ingest_burst": 20})
    writer = bearer((await api.role_tokens(tenant))["writer"])
    log_url = cfg.service_url("log")
    unenforced = "logserver_limits_unenforced_total"
    async with httpx.AsyncClient(
        base_url=log_url, timeout=60, limits=httpx.Limits(max_connections=400)
    ) as direct:
        before = metric((await direct.get("/metrics")).text, unenforced)
        sent = [
            direct.post("/api/v1/logs", json={"message": f"b{i}"}, headers=writer)
            for i in range(300)
        ]
        statuses = [r.status_code for r in await asyncio.gather(*sent)]
        after = metric((await direct.get("/metrics")).text, unenforced)
    assert set(statuses) <= {202, 429}
    assert after == before
    # the burst, plus what the rate refills while the requests are served
    assert 20 <= statuses.count(202) <= 20 + 5 * 30, statuses.count(202)
