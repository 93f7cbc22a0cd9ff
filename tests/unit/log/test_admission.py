"""IngestAdmission: the script's arguments and answer, the 429s, failing open."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.core.errors import RateLimited
from services.core.limits import Limits
from services.core.limitstore import StoreGuard
from services.core.metrics import LIMITS_UNENFORCED, REFUSED
from services.log.admission import (
    Decision,
    IngestAdmission,
    batch_args,
    refusal,
    script_args,
)

LIMITS = Limits(
    ingest_events_per_second=10,
    ingest_burst=20,
    ingest_bytes_per_second=5000,
    daily_events=1000,
    max_concurrent_queries=0,
    max_query_range_hours=0,
    max_export_events=0,
    max_concurrent_tails=0,
)


class FakeScript:
    def __init__(self, reply: list[Any] | None = None, error: Exception | None = None) -> None:
        self.reply, self.error = reply, error
        self.calls: list[tuple[list[str], list[Any]]] = []

    async def __call__(self, keys: list[str], args: list[Any]) -> list[Any]:
        self.calls.append((keys, args))
        if self.error is not None:
            raise self.error
        return self.reply or []


class FakePipeline:
    def __init__(self, counted: list[tuple[str, str]]) -> None:
        self.counted = counted

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def hincrby(self, key: str, field: str, amount: int) -> None:
        self.counted.append((key, field))

    def expire(self, key: str, seconds: int) -> None:
        pass

    async def execute(self) -> list[int]:
        return [1, 1]


class FakeRedis:
    def __init__(self, admit: FakeScript) -> None:
        self.scripts = [admit, FakeScript([1])]
        self.counted: list[tuple[str, str]] = []  # refusals counted in the day's usage

    def register_script(self, source: str) -> FakeScript:
        return self.scripts.pop(0)

    def pipeline(self, transaction: bool = False) -> FakePipeline:
        return FakePipeline(self.counted)


def admission(script: FakeScript) -> IngestAdmission:
    async def limits_of(tenant: str) -> Limits:
        return LIMITS

    return IngestAdmission(FakeRedis(script), limits_of, StoreGuard("test"))  # type: ignore[arg-type]


def test_one_request_is_one_call_with_both_buckets() -> None:
    args = script_args(LIMITS, events=7, size=900)
    assert args[:7] == [7, 900, 10, 20, 5000, 10000, 1000]  # bytes bucket: 2 s like events


def test_the_reply_is_read_from_redis_strings() -> None:
    decision = Decision.from_reply([0, b"ingest_bytes_per_second", b"1.250", b"3.5", b"100.0"])
    assert not decision.admitted and decision.limit == "ingest_bytes_per_second"
    assert decision.wait_seconds == 1.25 and decision.rate == 3.5 and decision.byte_rate == 100
    assert Decision.from_reply([1, b"", b"0", b"1", b"2"]).admitted


def test_refusals_name_the_limit_its_value_and_when_to_retry() -> None:
    rate = refusal("acme", LIMITS, Decision(False, "ingest_events_per_second", 0.2))
    assert rate.status == 429 and rate.headers == {"Retry-After": "1"}
    assert rate.type.endswith("/ingest-rate-limited")
    assert "10 events/s" in rate.detail and "burst 20 events" in rate.detail
    problem = rate.to_problem("/api/v1/logs/bulk")
    assert problem["limit"] == "ingest_events_per_second" and problem["limit_value"] == 10
    assert problem["retry_after"] == 1
    size = refusal("acme", LIMITS, Decision(False, "ingest_bytes_per_second", 2.1))
    assert "5,000 bytes/s" in size.detail and size.retry_after == 3
    daily = refusal("acme", LIMITS, Decision(False, "daily_events", 3600))
    assert daily.type.endswith("/daily-quota-exceeded") and daily.retry_after == 3600
    assert "1,000 events" in daily.detail and "00:00 UTC" in daily.detail


async def test_a_refused_request_raises_and_is_counted() -> None:
    script = FakeScript([0, b"ingest_events_per_second", b"1.5", b"12.0", b"0"])
    before = REFUSED.labels("acme", "ingest_events_per_second")._value.get()
    with pytest.raises(RateLimited) as caught:
        await admission(script).admit("acme", 5, 500)
    assert caught.value.retry_after == 2
    assert REFUSED.labels("acme", "ingest_events_per_second")._value.get() == before + 1
    keys, args = script.calls[0]
    assert keys[0] == "logserver:limits:{acme}:ingest" and keys[1].startswith("logserver:usage:")
    assert args[:2] == [5, 500]


async def test_an_admitted_request_returns() -> None:
    await admission(FakeScript([1, b"", b"0", b"1.0", b"10.0"])).admit("acme", 1, 10)


async def test_redis_away_admits_unchecked() -> None:
    before = LIMITS_UNENFORCED.labels("test", "ingest")._value.get()
    await admission(FakeScript(error=ConnectionError("down"))).admit("acme", 10**6, 10**9)
    assert LIMITS_UNENFORCED.labels("test", "ingest")._value.get() == before + 1


async def test_after_a_rate_refusal_the_tenant_is_refused_here_without_redis() -> None:
    now = [100.0]
    script = FakeScript([0, b"ingest_events_per_second", b"2.5", b"12.0", b"0"])
    client = FakeRedis(script)
    gate = IngestAdmission(client, _limits, StoreGuard("test"), clock=lambda: now[0])  # type: ignore[arg-type]
    with pytest.raises(RateLimited):
        await gate.admit("acme", 50, 5000)
    now[0] += 1.0
    with pytest.raises(RateLimited) as early:
        await gate.precheck("acme")  # what the routes ask before reading the body
    assert early.value.retry_after == 2 and early.value.limit == "ingest_events_per_second"
    with pytest.raises(RateLimited):
        await gate.admit("acme", 1, 10)
    assert len(script.calls) == 1  # the script was not run again...
    assert [f for _, f in client.counted] == ["refused:ingest_events_per_second"] * 2  # counted
    await gate.precheck("other")  # other tenants are not concerned
    now[0] += 1.6
    script.reply = [1, b"", b"0", b"1.0", b"10.0"]
    await gate.precheck("acme")
    await gate.admit("acme", 1, 10)
    assert len(script.calls) == 2


async def test_a_daily_quota_refusal_lets_a_smaller_request_try() -> None:
    script = FakeScript([0, b"daily_events", b"3600", b"0", b"0"])
    gate = admission(script)
    with pytest.raises(RateLimited):
        await gate.admit("acme", 5, 50)
    await gate.precheck("acme")  # no cooling down for the day's quota


async def _limits(tenant: str) -> Limits:
    return LIMITS


def test_a_batch_adds_each_further_request_after_the_limits() -> None:
    args = batch_args(LIMITS, [(7, 900), (1, 10), (3, 30)])
    assert args[:10] == script_args(LIMITS, events=7, size=900)
    assert args[10:] == [1, 10, 3, 30]


def test_a_batch_reply_holds_one_decision_per_request() -> None:
    reply = [1, b"", b"0", b"1", b"2", 0, b"daily_events", b"60", b"1", b"2"]
    first, second = Decision.from_replies(reply)
    assert first.admitted and not second.admitted and second.limit == "daily_events"


async def test_concurrent_requests_of_a_tenant_share_one_call_and_get_their_own_answer() -> None:
    script = FakeScript(
        [1, b"", b"0", b"1", b"2", 0, b"ingest_events_per_second", b"0.5", b"1", b"2"] * 2
    )
    gate = admission(script)
    first = await gate.admit("acme", 1, 10)  # alone: its own call
    assert first is None and len(script.calls) == 1
    script.reply = [1, b"", b"0", b"1", b"2", 0, b"ingest_events_per_second", b"0.5", b"1", b"2"]
    results = await asyncio.gather(
        gate.admit("acme", 2, 20), gate.admit("acme", 30, 300), return_exceptions=True
    )
    assert len(script.calls) == 2  # both requests in one call...
    assert script.calls[1][1][:2] == [2, 20] and script.calls[1][1][10:] == [30, 300]
    assert results[0] is None and isinstance(results[1], RateLimited)  # ...each its answer


async def test_requests_arriving_during_a_call_are_decided_together_by_the_next() -> None:
    release, called = asyncio.Event(), asyncio.Event()

    class SlowScript(FakeScript):
        async def __call__(self, keys: list[str], args: list[Any]) -> list[Any]:
            self.calls.append((keys, args))
            called.set()
            await release.wait()
            return [1, b"", b"0", b"1", b"2"] * (1 + (len(args) - 10) // 2)

    script = SlowScript()
    gate = admission(script)
    first = asyncio.ensure_future(gate.admit("acme", 1, 10))
    await called.wait()  # the first call is in flight
    later = [asyncio.ensure_future(gate.admit("acme", 1, 10)) for _ in range(5)]
    other = asyncio.ensure_future(gate.admit("other", 1, 10))  # another tenant: its own call
    release.set()
    await asyncio.gather(first, *later, other)
    assert len(script.calls) == 3
    assert sorted(len(args) for _, args in script.calls) == [10, 10, 18]


async def test_redis_away_lets_every_request_of_a_batch_through_and_counts_each() -> None:
    before = LIMITS_UNENFORCED.labels("test", "ingest")._value.get()
    gate = admission(FakeScript(error=ConnectionError("down")))
    await asyncio.gather(*(gate.admit("acme", 10**6, 10**9) for _ in range(3)))
    assert LIMITS_UNENFORCED.labels("test", "ingest")._value.get() == before + 3
