"""Readiness: probes with a timeout, one error-bus event per lost dependency, and only
the required checks deciding `/readyz`."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.core.web.app import ops_router
from services.core.web.health import NOT_REGISTERED, Readiness


class FakeBus:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def publish(self, kind: str, detail: str, **extra: Any) -> None:
        self.calls.append((kind, detail, extra))


class Switch:
    """A probe that answers or raises, as the test decides."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if not self.up:
            raise ConnectionError("connection refused")
        return "pong"


async def ok() -> None:
    return None


async def hang() -> None:
    await asyncio.Event().wait()


async def refused() -> None:
    raise ConnectionRefusedError("nobody listens on 27017")


@pytest.fixture
def bus() -> FakeBus:
    return FakeBus()


@pytest.fixture
def readiness(bus: FakeBus) -> Readiness:
    return Readiness(bus, timeout=0.05)  # type: ignore[arg-type]


async def test_no_probes_is_ready(readiness: Readiness) -> None:
    assert await readiness.check() == {}


async def test_report_values(readiness: Readiness) -> None:
    readiness.add("mongodb", ok)
    readiness.add("sqs", refused)
    readiness.add("redis", hang)
    report = await readiness.check()
    assert report == {
        "mongodb": "ok",
        "sqs": "ConnectionRefusedError: nobody listens on 27017",
        "redis": "no answer within 0.05s",
    }


async def test_long_error_messages_are_truncated(readiness: Readiness) -> None:
    async def verbose() -> None:
        raise ValueError("x" * 5000)

    readiness.add("chatty", verbose)
    assert len((await readiness.check())["chatty"]) == 300


async def test_probes_run_concurrently(readiness: Readiness) -> None:
    """`waiter` only finishes if `setter` runs while it waits: sequential probes time out."""
    event = asyncio.Event()

    async def waiter() -> None:
        await event.wait()

    async def setter() -> None:
        event.set()

    readiness.add("waiter", waiter)
    readiness.add("setter", setter)
    assert await readiness.check() == {"waiter": "ok", "setter": "ok"}


async def test_publishes_once_per_transition_to_down(readiness: Readiness, bus: FakeBus) -> None:
    mongo = Switch()
    readiness.add("mongodb", mongo)
    readiness.add("redis", ok)

    await readiness.check()
    assert bus.calls == []

    mongo.up = False
    for _ in range(3):
        report = await readiness.check()
        assert report["mongodb"] == "ConnectionError: connection refused"
    assert bus.calls == [
        ("dependency_lost", "ConnectionError: connection refused", {"dependency": "mongodb"})
    ]

    mongo.up = True
    assert (await readiness.check())["mongodb"] == "ok"
    assert len(bus.calls) == 1  # coming back is logged, not published

    mongo.up = False
    await readiness.check()
    await readiness.check()
    assert len(bus.calls) == 2  # a new outage is a new transition
    assert mongo.calls == 7


async def test_each_lost_dependency_is_published(readiness: Readiness, bus: FakeBus) -> None:
    readiness.add("sqs", refused)
    readiness.add("redis", hang)
    await readiness.check()
    await readiness.check()
    assert sorted(call[2]["dependency"] for call in bus.calls) == ["redis", "sqs"]
    assert {call[0] for call in bus.calls} == {"dependency_lost"}


async def test_adding_a_probe_with_the_same_name_replaces_it(readiness: Readiness) -> None:
    readiness.add("startup", refused)
    readiness.add("startup", ok)
    assert await readiness.check() == {"startup": "ok"}


# --- required checks decide, the others are reported -------------------------------


async def test_only_required_checks_block(bus: FakeBus) -> None:
    readiness = Readiness(bus, timeout=0.05, service="log")  # type: ignore[arg-type]
    readiness.require(["sqs"])
    readiness.add("sqs", ok)
    readiness.add("mongodb", refused)
    report = await readiness.check()
    assert report["mongodb"] != "ok"
    assert readiness.blocking(report) == []
    assert readiness.decides("sqs") and not readiness.decides("mongodb")

    readiness.add("sqs", refused)
    assert readiness.blocking(await readiness.check()) == ["sqs"]


async def test_without_a_required_list_every_check_decides(readiness: Readiness) -> None:
    readiness.add("mongodb", refused)
    readiness.add("redis", ok)
    assert readiness.blocking(await readiness.check()) == ["mongodb"]


async def test_a_required_check_nobody_registered_blocks(readiness: Readiness) -> None:
    readiness.require(["signing-keys"])
    readiness.add("mongodb", ok)
    report = await readiness.check()
    assert report["signing-keys"] == NOT_REGISTERED
    assert readiness.blocking(report) == ["signing-keys"]


async def test_gauge_per_dependency(bus: FakeBus) -> None:
    readiness = Readiness(bus, timeout=0.05, service="gauge-test")  # type: ignore[arg-type]
    readiness.require(["sqs"])
    readiness.add("sqs", ok)
    readiness.add("mongodb", refused)
    await readiness.check()

    def value(dependency: str, required: str) -> float | None:
        return REGISTRY.get_sample_value(
            "logserver_dependency_up",
            {"service": "gauge-test", "dependency": dependency, "required": required},
        )

    assert value("sqs", "true") == 1
    assert value("mongodb", "false") == 0
    readiness.add("mongodb", ok)
    await readiness.check()
    assert value("mongodb", "false") == 1


def _ops_app(readiness: Readiness) -> FastAPI:
    app = FastAPI()
    app.state.readiness = readiness
    app.include_router(ops_router())
    return app


async def _readyz(readiness: Readiness) -> httpx.Response:
    transport = httpx.ASGITransport(app=_ops_app(readiness))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/readyz")


async def test_readyz_stays_200_when_only_an_optional_check_fails(bus: FakeBus) -> None:
    readiness = Readiness(bus, timeout=0.05)  # type: ignore[arg-type]
    readiness.require(["sqs"])
    readiness.add("sqs", ok)
    readiness.add("mongodb", refused)
    resp = await _readyz(readiness)
    assert resp.status_code == 200
    assert resp.json() == {
        "status": "degraded",
        "checks": {"sqs": "ok", "mongodb": "ConnectionRefusedError: nobody listens on 27017"},
        "required": ["sqs"],
        "degraded": ["mongodb"],
    }


async def test_readyz_503_names_the_required_check_and_reports_all(bus: FakeBus) -> None:
    readiness = Readiness(bus, timeout=0.05)  # type: ignore[arg-type]
    readiness.require(["sqs"])
    readiness.add("sqs", hang)
    readiness.add("mongodb", refused)
    resp = await _readyz(readiness)
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["retry-after"] == "5"
    body = resp.json()
    assert body["detail"] == "Not ready: sqs (no answer within 0.05s)"
    assert set(body["checks"]) == {"sqs", "mongodb"}
    assert body["required"] == ["sqs"] and body["degraded"] == ["mongodb"]


async def test_readyz_all_ok(bus: FakeBus) -> None:
    readiness = Readiness(bus, timeout=0.05)  # type: ignore[arg-type]
    readiness.add("redis", ok)
    resp = await _readyz(readiness)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ready"
