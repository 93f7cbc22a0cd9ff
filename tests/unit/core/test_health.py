"""Readiness: probes with a timeout, and one error-bus event per lost dependency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.core.health import Readiness


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
