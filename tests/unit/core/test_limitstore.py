"""StoreGuard (limits fail open), key names and day arithmetic."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from services.core.limitstore import (
    StoreGuard,
    _decayed,
    bucket_key,
    seconds_to_midnight,
    slots_key,
    usage_key,
    utc_day,
)
from services.core.metrics import LIMITS_UNENFORCED
from tests.support.fakes import FakeClock


def unenforced(check: str) -> float:
    return LIMITS_UNENFORCED.labels("test", check)._value.get()


async def test_a_failing_store_lets_the_request_through_and_pauses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(now=100.0)
    guard = StoreGuard("test", clock=clock, pause=1.0)
    calls = 0

    async def down() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("no redis")

    before = unenforced("ingest")
    with caplog.at_level(logging.WARNING):
        assert await guard.run("ingest", down, "open") == "open"
        assert await guard.run("ingest", down, "open") == "open"  # paused: not asked
    assert calls == 1 and unenforced("ingest") == before + 2
    assert [r.message for r in caplog.records].count(
        "limits not enforced: their store (Redis) did not answer; requests pass unchecked "
        "until it does"
    ) == 1
    clock.now += 1.0
    assert await guard.run("ingest", down, "open") == "open"
    assert calls == 2  # asked again after the pause

    async def up() -> str:
        return "checked"

    clock.now += 1.0
    assert await guard.run("ingest", up, "open") == "checked"


async def test_a_slow_store_is_not_waited_for() -> None:
    guard = StoreGuard("test", timeout=0.01)

    async def slow() -> str:
        await asyncio.sleep(5)
        return "late"

    assert await guard.run("slots", slow, "open") == "open"
    assert not guard.available


def test_one_tenants_keys_share_a_cluster_slot() -> None:
    for key in (bucket_key("acme"), usage_key("acme", "20260101"), slots_key("acme", "tails")):
        assert "{acme}" in key


def test_days_are_utc() -> None:
    late = datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)
    assert utc_day(late) == "20260301"
    assert seconds_to_midnight(late) == 30
    assert seconds_to_midnight(datetime(2026, 3, 1, tzinfo=UTC)) == 86400


def test_the_rate_decays_with_the_time_since_the_last_request() -> None:
    assert _decayed(b"10.0", b"100.0", 100.0) == 10.0
    assert 3.6 < _decayed("10", "100", 110.0) < 3.7  # e^-1
    assert _decayed(None, None, 1.0) == 0.0
