"""Scenario single_event, open loop: single-event POSTs at a fixed request rate, for latency.

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
from urllib.parse import urlsplit

from benchmarks.common import (
    event_bodies,
    install_uvloop,
    load_config,
    percentiles,
    write_summary,
)


class Connections:
    """Keep-alive HTTP/1.1 connections to one host, opened on demand, reused when idle.

    Hand-rolled on asyncio streams rather than aiohttp: at 1,000 requests a second
    aiohttp's client cost ~0.7 ms of CPU per request on the machine under test
    (two thirds of a core taken from the server); a pre-built request and a
    minimal response parser cost a fraction of that.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = parts.netloc
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    def request(self, path: str, token: str, body: bytes) -> bytes:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.authority}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def send(self, raw: bytes) -> int:
        """Send one request; the response status (the connection goes back to the pool)."""
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            keep = True
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


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
    conns = Connections(url)
    requests = [
        conns.request("/api/v1/logs", tokens[i % len(tokens)], body)
        for i, body in enumerate(bodies)
    ]
    total = int(rate * (duration + warmup))
    corrected: list[float] = []
    service: list[float] = []
    statuses: Counter[str] = Counter()
    lag_ms = 0.0
    tasks: set[asyncio.Task[None]] = set()
    by_second: dict[int, float] = {}  # worst latency of the requests due in each second

    async def one(i: int, due: float) -> None:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(request_timeout):
                status = str(await conns.send(requests[i % len(requests)]))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            status = type(exc).__name__
        end = time.perf_counter()
        if due - t0 >= warmup:
            statuses[status] += 1
            if status == "202":
                corrected.append((end - due) * 1000)
                service.append((end - start) * 1000)
                by_second[int(due - t0)] = max(by_second.get(int(due - t0), 0.0), corrected[-1])

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
    conns.close()
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
        "connections_opened": conns.opened,
        "worst_ms_by_second": {str(k): round(v, 1) for k, v in sorted(by_second.items())},
    }


def main() -> None:
    cfg = load_config()
    install_uvloop()
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
