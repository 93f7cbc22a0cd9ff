"""The event-loop lag sampler behind logserver_event_loop_lag_seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time

from services.core.metrics import LOOP_LAG, watch_loop_lag


def _sample(service: str, suffix: str) -> float:
    for metric in LOOP_LAG.collect():
        for sample in metric.samples:
            if sample.name.endswith(suffix) and sample.labels.get("service") == service:
                return sample.value
    return 0.0


async def _until_samples(service: str, n: float, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while _sample(service, "_count") < n:
        assert time.monotonic() < deadline, f"fewer than {n} lag samples within {within}s"
        await asyncio.sleep(0.005)


def _busy(seconds: float) -> None:
    """Hold the CPU (and so the loop) the way a CPU-bound request would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_a_blocked_loop_shows_up_as_lag() -> None:
    watcher = asyncio.create_task(watch_loop_lag("lag-test", every=0.01))
    try:
        await _until_samples("lag-test", 2)
        before = _sample("lag-test", "_sum")
        count = _sample("lag-test", "_count")
        _busy(0.2)
        await _until_samples("lag-test", count + 1)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert _sample("lag-test", "_sum") - before >= 0.15
