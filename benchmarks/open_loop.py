"""(a) open loop: single-event POST at a fixed request rate, for latency.

Locust (like ``hey``) is closed loop: a slow answer delays the next request,
which hides queueing (coordinated omission). Here request *i* is due at
``t0 + i / rate`` whether or not earlier ones have answered, and latency is
measured from that due time (``latency_ms``) as well as from the actual send
(``service_ms``), with ``time.perf_counter`` (uvloop's ``loop.time`` has only
millisecond resolution). The first ``warmup`` seconds are sent but not counted.

    BENCH_CONFIG=cfg.json python benchmarks/open_loop.py
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from benchmarks.common import event_bodies, load_config, percentiles, write_summary


async def open_loop(
    url: str,
    tokens: list[str],
    *,
    rate: float,
    duration: float,
    warmup: float = 1.0,
    seed: int = 1,
    request_timeout: float = 30.0,
) -> dict[str, Any]:
    bodies = event_bodies(seed, 2000)
    loop = asyncio.get_running_loop()
    headers = [{"Authorization": f"Bearer {t}", "Content-Type": "application/json"} for t in tokens]
    total = int(rate * (duration + warmup))
    corrected: list[float] = []
    service: list[float] = []
    statuses: Counter[str] = Counter()
    lag_ms = 0.0
    tasks: set[asyncio.Task[None]] = set()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=request_timeout)
    async with aiohttp.ClientSession(
        base_url=url, connector=connector, timeout=client_timeout
    ) as session:

        async def one(i: int, due: float) -> None:
            start = time.perf_counter()
            try:
                async with session.post(
                    "/api/v1/logs", data=bodies[i % len(bodies)], headers=headers[i % len(headers)]
                ) as resp:
                    await resp.read()
                    status = str(resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            end = time.perf_counter()
            if due - t0 >= warmup:
                statuses[status] += 1
                if status == "202":
                    corrected.append((end - due) * 1000)
                    service.append((end - start) * 1000)

        t0 = time.perf_counter() + 0.1
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag_ms = max(lag_ms, -delay * 1000)
            task = loop.create_task(one(i, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        send_window = time.perf_counter() - t0
        if tasks:
            await asyncio.gather(*tasks)
    counted = sum(statuses.values())
    errors = counted - statuses.get("202", 0)
    return {
        "scenario": "a_open",
        "target_rate": rate,
        "requests": counted,
        "ok": statuses.get("202", 0),
        "errors": errors,
        "statuses": dict(statuses),
        "events": statuses.get("202", 0),
        "seconds": round(duration, 3),
        "req_per_s": round(total / send_window, 1) if send_window else 0.0,
        "events_per_s": round(statuses.get("202", 0) / duration, 1),
        "latency_ms": percentiles(corrected),
        "service_ms": percentiles(service),
        "max_schedule_lag_ms": round(lag_ms, 2),
    }


def main() -> None:
    cfg = load_config()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    started = time.time()
    summary = asyncio.run(
        open_loop(
            cfg["url"],
            cfg["writer_tokens"],
            rate=cfg.get("rate", 1000),
            duration=cfg.get("duration", 20),
            warmup=cfg.get("warmup", 1.0),
            seed=cfg.get("seed", 1),
        )
    )
    summary["started"] = started
    write_summary(cfg["summary_path"], summary)


if __name__ == "__main__":
    main()
