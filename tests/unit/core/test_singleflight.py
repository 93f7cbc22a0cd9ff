"""SingleFlight: one call per key in flight, every waiter woken together."""

from __future__ import annotations

import asyncio

import pytest

from services.core.singleflight import SingleFlight


async def test_concurrent_callers_share_one_call_and_wake_together() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()
    calls = 0

    async def slow() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.ensure_future(flight.run("k", slow)) for _ in range(500)]
    await asyncio.sleep(0)
    assert "k" in flight
    gate.set()
    for _ in range(3):  # a lock would need one loop turn per waiter (500 here)
        await asyncio.sleep(0)
    assert all(w.done() for w in waiters)
    assert [w.result() for w in waiters] == [42] * 500
    assert calls == 1
    assert "k" not in flight


async def test_a_finished_call_is_not_reused() -> None:
    flight: SingleFlight[int] = SingleFlight()
    results = iter([1, 2])

    async def call() -> int:
        return next(results)

    assert await flight.run("k", call) == 1
    assert await flight.run("k", call) == 2


async def test_other_keys_do_not_wait() -> None:
    flight: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()

    async def blocked() -> str:
        await gate.wait()
        return "a"

    async def quick() -> str:
        return "b"

    first = asyncio.ensure_future(flight.run("a", blocked))
    assert await flight.run("b", quick) == "b"
    gate.set()
    assert await first == "a"


async def test_every_waiter_gets_the_error() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def failing() -> int:
        await gate.wait()
        raise RuntimeError("backend down")

    waiters = [asyncio.ensure_future(flight.run("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    for w in waiters:
        with pytest.raises(RuntimeError, match="backend down"):
            await w


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    flight: SingleFlight[int] = SingleFlight()
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 7

    leaving = asyncio.ensure_future(flight.run("k", slow))
    staying = asyncio.ensure_future(flight.run("k", slow))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    assert await staying == 7
    assert leaving.cancelled()
