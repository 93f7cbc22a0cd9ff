"""Counts from write-time rollups stay exact across redelivery, a killed worker and a
cleanup; counts the rollups cannot answer are bounded."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.cli.stack import ProcessGroup, StackConfig
from services.core.logs.model import LEVEL_NO, iso
from services.core.logs.rollups import PENDING
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration

LEVELS = ("DEBUG", "INFO", "INFO", "WARNING", "ERROR", "CRITICAL")
SERVICES = ("api", "db.main", None)  # a dot in a name, and events without a service


def _events(now: datetime) -> list[dict[str, Any]]:
    """10,000 events over the last ~3 days; every 10th repeats an earlier id (a retry)."""
    events = []
    for i in range(10_000):
        event_id = f"r{i - 5}" if i % 10 == 9 else f"r{i}"
        n = i - 5 if i % 10 == 9 else i
        ts = now - timedelta(seconds=n * 25, milliseconds=n % 997)
        event = {"id": event_id, "timestamp": iso(ts), "message": f"event {n}"}
        event["level"] = LEVELS[n % len(LEVELS)]
        service = SERVICES[n % len(SERVICES)]
        if service is not None:
            event["service"] = service
        events.append(event)
    return events


def _matches(doc: dict[str, Any], params: dict[str, str]) -> bool:
    if "level" in params and doc["level"] not in params["level"].split(","):
        return False
    if "min_level" in params and LEVEL_NO[doc["level"]] < LEVEL_NO[params["min_level"].upper()]:
        return False
    if "service" in params and doc.get("service") != params["service"]:
        return False
    ts = doc["timestamp"]
    if "from" in params and ts < datetime.fromisoformat(params["from"]):
        return False
    return not ("to" in params and ts >= datetime.fromisoformat(params["to"]))


def _truth(docs: list[dict[str, Any]], params: dict[str, str], by: str, step: int) -> dict:
    hits = [d for d in docs if _matches(d, params)]
    counts = Counter(str(d.get(by) or "(none)") for d in hits)
    hist: Counter[int] = Counter()
    for d in hits:
        epoch = int(d["timestamp"].timestamp())
        hist[epoch - epoch % step] += 1
    return {"total": len(hits), "counts": dict(counts), "hist": dict(hist)}


async def _counted_from(cfg: StackConfig, source: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(cfg.service_url("log") + "/metrics")).text
    for line in text.splitlines():
        if line.startswith(f'logserver_log_counts_total{{source="{source}"}}'):
            return float(line.split()[-1])
    return 0.0


async def test_rollup_answers_match_the_stored_events_across_crash_and_cleanup(
    api: Api, stack: ProcessGroup, cfg: StackConfig
) -> None:
    tenant = await api.tenant("roll")
    tokens = await api.role_tokens(tenant)
    writer, reader = bearer(tokens["writer"]), bearer(tokens["admin"])
    now = datetime.now(UTC).replace(microsecond=0)
    events = _events(now)
    unique = {e["id"] for e in events}
    mongo = AsyncMongoClient(cfg.mongodb_url, tz_aware=True)
    db = mongo["logserver"]
    try:

        async def post(chunk: list[dict]) -> None:
            resp = await api.http.post("/api/v1/logs/bulk", json=chunk, headers=writer)
            assert resp.status_code == 202, resp.text

        chunks = [events[i : i + 500] for i in range(0, len(events), 500)]
        await asyncio.gather(*(post(c) for c in chunks[:10]))
        stack.stop("worker", sig=signal.SIGKILL)  # mid-stream: batches in hand are cut
        await asyncio.gather(*(post(c) for c in chunks[10:]))
        stack.start("worker")
        stack.wait(["worker"], timeout=60)

        async def all_stored() -> bool:
            return await db.logs.count_documents({"tenant_id": tenant}) == len(unique)

        await eventually(all_stored, within=240, every=1.0)

        # Cleanup of a range whose edges cut minutes, of one level only.
        gone_from = now - timedelta(hours=50, seconds=17)
        gone_to = now - timedelta(hours=30, seconds=41)
        doomed = {
            "tenant_id": tenant,
            "level": "ERROR",
            "timestamp": {"$gte": gone_from, "$lt": gone_to},
        }
        expected_gone = await db.logs.count_documents(doomed)
        assert expected_gone > 0
        resp = await api.http.delete(
            "/api/v1/logs/cleanup",
            params={"from": iso(gone_from), "before": iso(gone_to), "level": "ERROR"},
            headers=reader,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"deleted": expected_gone}

        # The killed worker's batches are counted once their lease ran out (15 s here).
        async def settled() -> bool:  # no batch or delete of this tenant left unfinished
            unfinished = {"$or": [{"minutes": {"$exists": True}}, {"ids": {"$exists": True}}]}
            return await db[PENDING].count_documents({"tenant_id": tenant, **unfinished}) == 0

        await eventually(settled, within=120, every=1.0)
        docs = await db.logs.find(
            {"tenant_id": tenant}, {"timestamp": 1, "level": 1, "service": 1}
        ).to_list()
        assert len(docs) == len(unique) - expected_gone

        minute = now.replace(second=0) - timedelta(hours=20)
        cases: list[dict[str, str]] = [
            {},
            {"level": "ERROR"},
            {"level": "INFO,WARNING"},
            {"min_level": "warning"},
            {"service": "api"},
            {"service": "db.main", "level": "CRITICAL"},
            {"from": iso(minute), "to": iso(minute + timedelta(hours=3))},  # aligned
            {
                "from": iso(now - timedelta(hours=60, seconds=7)),
                "to": iso(now - timedelta(hours=1, seconds=3)),
            },
            {"from": iso(gone_from - timedelta(minutes=5)), "level": "ERROR"},
            {"timestamp": (now - timedelta(days=2)).date().isoformat()},
        ]
        rollups_before = await _counted_from(cfg, "rollups")
        for params in cases:
            truth_params = dict(params)
            if "timestamp" in truth_params:
                day = datetime.fromisoformat(truth_params.pop("timestamp")).replace(tzinfo=UTC)
                truth_params["from"] = iso(day)
                truth_params["to"] = iso(day + timedelta(days=1))
            page = await api.http.get(
                "/api/v1/logs", params={**params, "limit": "1", "total": "true"}, headers=reader
            )
            assert page.status_code == 200, page.text
            want = _truth(docs, truth_params, "level", 3600)
            assert page.json()["meta"]["total"] == want["total"], params
            assert page.json()["meta"]["total_relation"] == "eq"
            shapes = [("level", "1h", 3600), ("service", "1d", 86400)]
            if params.get("from") == iso(minute):  # minute rollups serve finer histograms
                shapes += [("level", "5m", 300), ("service", "1m", 60)]
            for by, interval, step in shapes:
                resp = await api.http.get(
                    "/api/v1/logs/stats",
                    params={**params, "by": by, "interval": interval},
                    headers=reader,
                )
                assert resp.status_code == 200, resp.text
                got = resp.json()
                want = _truth(docs, truth_params, by, step)
                assert got["total"] == want["total"], (params, by)
                assert got["counts"] == want["counts"], (params, by)
                hist = {
                    int(datetime.fromisoformat(b["start"]).timestamp()): b["count"]
                    for b in got["histogram"]
                }
                assert hist == want["hist"], (params, by, interval)
        # and they were answered from the rollups, not by counting the events
        assert await _counted_from(cfg, "rollups") > rollups_before
    finally:
        await mongo.close()


async def test_total_beyond_the_counting_cap_is_a_lower_bound(api: Api) -> None:
    tenant = await api.tenant("cap")
    tokens = await api.role_tokens(tenant)
    writer, reader = bearer(tokens["writer"]), bearer(tokens["viewer"])
    # the test stack caps counts at 1,000 (LOGSERVER_QUERY_COUNT_LIMIT)
    events = [{"id": f"c{i}", "message": f"needle {i}", "service": "s"} for i in range(1_001)]
    for i in range(0, len(events), 1000):
        resp = await api.http.post("/api/v1/logs/bulk", json=events[i : i + 1000], headers=writer)
        assert resp.status_code == 202, resp.text

    async def stored() -> bool:
        r = await api.http.get(
            "/api/v1/logs", params={"total": "true", "limit": "1"}, headers=reader
        )
        return r.json()["meta"]["total"] == len(events)

    await eventually(stored, within=120, every=1.0)
    count_only = await api.http.get(
        "/api/v1/logs", params={"total": "true", "limit": "0"}, headers=reader
    )
    assert count_only.json() == {
        "data": [],
        "meta": {"limit": 0, "total": 1_001, "total_relation": "eq"},
    }
    # a substring filter scans on FerretDB: give it time on a busy machine
    capped = await api.http.get(
        "/api/v1/logs",
        params={"q": "needle", "total": "true", "limit": "1"},
        headers=reader,
        timeout=120,
    )
    assert capped.json()["meta"]["total"] == 1_000
    assert capped.json()["meta"]["total_relation"] == "gte"
    exact = await api.http.get(
        "/api/v1/logs",
        params={"q": "needle 1", "total": "true", "limit": "1"},
        headers=reader,
        timeout=120,
    )
    # needle 1, 10-19, 100-199, 1000: 1 + 10 + 100 + 1
    assert exact.json()["meta"]["total"] == 112
    assert exact.json()["meta"]["total_relation"] == "eq"
