"""Scenario fanout with the clients spread over child processes, the ingest in this one.

A hundred clients receiving 1,000 events/s each is 100,000 deliveries a second:
one Python process cannot read that and still measure on time. Run through
``benchmarks/ws_fanout.py`` (it picks this when ``processes`` > 1).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from collections import Counter
from typing import Any

from benchmarks.common import install_uvloop
from benchmarks.ws_fanout import drive_ingest, fanout, summarize


def _listener(
    cfg: dict[str, Any], index: int, share: int, marker: str, channel: Any, stop: Any
) -> None:
    """A child process: ``share`` clients listen until the parent says stop."""
    install_uvloop()

    async def run() -> dict[str, Any]:
        done = asyncio.Event()

        async def watch_parent() -> None:
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
            done.set()

        watcher = asyncio.create_task(watch_parent())
        try:
            return await fanout(
                cfg["url"],
                cfg["viewer_tokens"],
                None,
                clients=share,
                duration=3600,
                marker=marker,
                listen_only=True,
                compression=cfg.get("compression", "deflate"),
                stop=done,
                on_connected=lambda: channel.put(("connected", index)),
                on_progress=lambda n: channel.put(("progress", index, n)),
            )
        finally:
            watcher.cancel()

    channel.put(("result", asyncio.run(run())))


async def fanout_processes(
    cfg: dict[str, Any], processes: int, stop: asyncio.Event
) -> dict[str, Any]:
    """The clients spread over ``processes`` child processes, the ingest in this one.

    A hundred clients receiving 1,000 events/s each is 100,000 deliveries a second:
    one Python process cannot read that and still measure on time, and its own
    POSTs (sharing the loop) were answered late. Spread out, each listener stays
    below saturation, so the latency measured is the server's.
    """
    clients = cfg.get("clients", 100)
    marker = cfg.get("marker") or f"fanout-{int(time.time())}"
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue()
    stop_children = ctx.Event()
    shares = [
        clients // processes + (1 if i < clients % processes else 0) for i in range(processes)
    ]
    children = [
        ctx.Process(target=_listener, args=(cfg, i, share, marker, channel, stop_children))
        for i, share in enumerate(shares)
    ]
    for child in children:
        child.start()
    loop = asyncio.get_running_loop()
    delivered = [0] * processes  # cumulative deliveries each child reported last
    results: list[dict[str, Any]] = []

    async def read(wait_s: float) -> tuple[str, Any] | None:
        try:
            return await loop.run_in_executor(None, channel.get, True, wait_s)
        except queue.Empty:
            return None

    try:
        connect_start = time.monotonic()
        reported = 0
        while reported < processes and time.monotonic() - connect_start < 90:
            item = await read(1.0)
            if item and item[0] == "connected":
                reported += 1
        connect_seconds = time.monotonic() - connect_start
        await asyncio.sleep(1.0)
        ingest_ms: list[float] = []
        ingest_errors: Counter[str] = Counter()
        start = time.monotonic()
        sent = await drive_ingest(
            cfg["url"],
            (cfg.get("writer_tokens") or [None])[0],
            cfg.get("rate", 1000),
            cfg.get("duration", 20),
            cfg.get("batch", 10),
            cfg.get("seed", 1),
            marker,
            stop,
            ingest_ms,
            ingest_errors,
        )
        deadline = time.monotonic() + cfg.get("drain", 15)
        while time.monotonic() < deadline and sum(delivered) < sent * clients:
            item = await read(0.2)
            if item and item[0] == "progress":
                delivered[item[1]] = item[2]
        elapsed = time.monotonic() - start
    finally:
        stop_children.set()
    while len(results) < processes:
        item = await read(60.0)
        if item is None:
            break
        if item[0] == "result":
            results.append(item[1])
    for child in children:
        child.join(timeout=30)
    closes: Counter[str] = Counter()
    for r in results:
        closes.update(r["closes"])
    return summarize(
        scenario="e_fanout",
        clients=clients,
        processes=processes,
        connected=sum(r["connected"] for r in results),
        connect_seconds=connect_seconds,
        compression=cfg.get("compression", "deflate"),
        rate=cfg.get("rate", 1000),
        batch=cfg.get("batch", 10),
        sent=sent,
        ingest_ms=ingest_ms,
        ingest_errors=ingest_errors,
        events_per_s=round(sent / cfg.get("duration", 20), 1),
        deliveries=sum(r["deliveries"] for r in results),
        expected=sent * clients,
        elapsed=elapsed,
        closes=closes,
        latencies=[x for r in results for x in r["latencies"]],
    )
