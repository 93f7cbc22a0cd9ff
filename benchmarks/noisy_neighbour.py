"""Scenario noisy_neighbour: does one tenant's flood cost another tenant anything?

Tenant B sends a steady open loop of single-event POSTs (``b_rate`` events/s) and
runs light searches one after the other (the last 20 events; one person, closed loop:
on FerretDB v1 every search reads the whole collection, so an open loop of them would
pile up past B's own query limit). That runs twice, each for
``seconds``: alone (*quiet*), then while tenant A floods ingest at ``flood_factor``
times its ``ingest_events_per_second`` (bulk requests of ``a_batch`` events, open
loop) and runs heavy searches (a long substring over everything, ``a_searchers``
closed-loop clients, more than its ``max_concurrent_queries``). B's latencies are
measured from each request's due time (no coordinated omission), quiet and flood
side by side; A's answers are counted by status (its 429s are the limits working).

    BENCH_CONFIG=cfg.json python benchmarks/noisy_neighbour.py
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import orjson

from benchmarks.common import event_bodies, install_uvloop, load_config, percentiles, write_summary
from benchmarks.open_loop import Connections

HEAVY_Q = "request completed status=200 duration"  # in many messages: a long scan for each
LIGHT = "/api/v1/logs?limit=20"


def _get(conns: Connections, path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {conns.authority}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


class Recorder:
    def __init__(self) -> None:
        self.latency_ms: list[float] = []
        self.statuses: Counter[str] = Counter()

    def summary(self, seconds: float) -> dict[str, Any]:
        n = sum(self.statuses.values())
        return {
            "requests": n,
            "req_per_s": round(n / seconds, 1) if seconds else None,
            "statuses": dict(self.statuses),
            "latency_ms": percentiles(self.latency_ms),
        }


async def _paced(
    rate: float,
    until: float,
    send: Any,
    rec: Recorder,
    request_timeout: float,
    measured_from: float,
) -> None:
    """Open loop: request i is due at start + i / rate; latency from that due time."""
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    i = 0

    async def one(due: float, index: int) -> None:
        try:
            async with asyncio.timeout(request_timeout):
                status = str(await send(index))
        except TimeoutError:
            status = "timeout"
        except Exception as exc:
            status = type(exc).__name__
        if due >= measured_from:
            rec.statuses[status] += 1
            if status.startswith("2"):
                rec.latency_ms.append((time.perf_counter() - due) * 1000)

    while True:
        due = start + i / rate
        if due >= until:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.gather(*tasks)


async def _closed(
    until: float, send: Any, rec: Recorder, request_timeout: float, measured_from: float = 0.0
) -> None:
    """Closed loop: one request after the other until ``until``; those sent from
    ``measured_from`` on are recorded."""
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(request_timeout):
                status = str(await send())
        except TimeoutError:
            status = "timeout"
        except Exception as exc:
            status = type(exc).__name__
        if started >= measured_from:
            rec.statuses[status] += 1
            if status.startswith("2"):
                rec.latency_ms.append((time.perf_counter() - started) * 1000)
        if status == "429":
            await asyncio.sleep(0.2)  # a well-behaved client backs off a little


async def phase(config: dict[str, Any], flood: bool) -> dict[str, Any]:
    url, seconds, warmup = config["url"], config["seconds"], config["warmup"]
    timeout = config.get("request_timeout", 60)
    b_conns, a_conns = Connections(url), Connections(url)
    bodies = event_bodies(config["seed"], 1000, marker="noisy-b")
    b_posts = [b_conns.request("/api/v1/logs", config["b_writer"], body) for body in bodies]
    b_search = _get(b_conns, LIGHT, config["b_viewer"])
    batch = config["a_batch"]
    a_bodies = event_bodies(config["seed"] + 1, batch * 20)
    a_posts = [
        a_conns.request(
            "/api/v1/logs/bulk",
            config["a_writer"],
            b"[" + b",".join(a_bodies[k : k + batch]) + b"]",
        )
        for k in range(0, len(a_bodies), batch)
    ]
    a_search = _get(
        a_conns,
        "/api/v1/logs?limit=50&q=" + HEAVY_Q.replace(" ", "%20"),
        config["a_viewer"],
    )
    start = time.perf_counter()
    measured_from = start + warmup
    until = measured_from + seconds
    b_ingest, b_reads, a_ingest, a_reads = Recorder(), Recorder(), Recorder(), Recorder()
    jobs = [
        _paced(
            config["b_rate"],
            until,
            lambda i: b_conns.send(b_posts[i % len(b_posts)]),
            b_ingest,
            timeout,
            measured_from,
        ),
        # every search counted, warm-up included: on a big FerretDB collection one search
        # can outlast a short phase, and a phase must measure at least one
        _closed(until, lambda: b_conns.send(b_search), b_reads, timeout),
    ]
    if flood:
        flood_rate = config["a_limit"] * config["flood_factor"] / batch  # requests/s
        jobs.append(
            _paced(
                flood_rate,
                until,
                lambda i: a_conns.send(a_posts[i % len(a_posts)]),
                a_ingest,
                timeout,
                measured_from,
            )
        )
        jobs += [
            _closed(until, lambda: a_conns.send(a_search), a_reads, timeout)
            for _ in range(config["a_searchers"])
        ]
    await asyncio.gather(*jobs)
    b_conns.close()
    a_conns.close()
    out: dict[str, Any] = {
        "b_ingest": b_ingest.summary(seconds),
        "b_search": b_reads.summary(seconds),
    }
    if flood:
        accepted = a_ingest.statuses.get("202", 0) * batch
        out["a_ingest"] = a_ingest.summary(seconds) | {
            "offered_events_per_s": config["a_limit"] * config["flood_factor"],
            "accepted_events_per_s": round(accepted / seconds, 1),
        }
        out["a_search"] = a_reads.summary(seconds)
    return out


async def main() -> None:
    config = load_config()
    quiet = await phase(config, flood=False)
    await asyncio.sleep(config.get("pause", 2))
    flood = await phase(config, flood=True)

    def ratio(kind: str, p: str) -> float | None:
        q, f = quiet[kind]["latency_ms"][p], flood[kind]["latency_ms"][p]
        return round(f / q, 2) if q and f is not None else None

    summary = {
        "scenario": "noisy_neighbour",
        "seconds": config["seconds"],
        "b_rate": config["b_rate"],
        "a_limit": config["a_limit"],
        "flood_factor": config["flood_factor"],
        "quiet": quiet,
        "flood": flood,
        "b_ingest_p99_ratio": ratio("b_ingest", "p99"),
        "b_search_p95_ratio": ratio("b_search", "p95"),
    }
    write_summary(config["summary_path"], summary)
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    install_uvloop()
    asyncio.run(main())
