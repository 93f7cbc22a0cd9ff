"""Scenario fanout: N live-tail clients, ingest at a fixed rate, ingest→receive latency.

Every event carries ``attributes.bench_sent`` (epoch seconds at the POST) and
``attributes.bench`` (this run's marker); each client computes
``receive time - bench_sent`` for every event of the run it gets, so the
latency covers the whole path: gateway → log → SQS → worker → storage →
Redis → broadcast → WebSocket. All clients tail the same tenant, so each
event is delivered ``clients`` times. Events go in bulk requests of
``batch`` events, ``rate / batch`` requests a second.

With ``listen_only`` (the mixed scenario) it only listens for ``duration``
seconds and measures whatever stamped events arrive.

    BENCH_CONFIG=cfg.json python benchmarks/ws_fanout.py
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import websockets

from benchmarks.common import install_uvloop, load_config, percentiles, write_summary
from services.cli.generate import EventGenerator


async def fanout(
    url: str,
    viewer_tokens: list[str],
    writer_token: str | None,
    *,
    clients: int = 100,
    rate: float = 1000,
    duration: float = 20,
    batch: int = 10,
    seed: int = 1,
    drain: float = 15,
    marker: str | None = None,
    listen_only: bool = False,
    compression: str | None = "deflate",
    stop: asyncio.Event | None = None,
    on_connected: Callable[[], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """One process's share of the clients (and, unless ``listen_only``, the ingest).

    ``on_connected`` is called once every client is connected; ``on_progress``
    every 0.2 s with the deliveries so far (the multi-process driver uses both).
    """
    marker = marker or f"fanout-{int(time.time())}"
    ws_base = url.replace("http", "ws", 1) + "/api/v1/logs/stream"
    latencies: list[float] = []
    received = [0] * clients
    closes: Counter[str] = Counter()
    connected = 0
    stop = stop or asyncio.Event()
    all_connected = asyncio.Event()
    sent = 0
    ingest_ms: list[float] = []
    ingest_errors: Counter[str] = Counter()

    async def client(i: int) -> None:
        nonlocal connected
        token = viewer_tokens[i % len(viewer_tokens)]
        try:
            async with websockets.connect(
                f"{ws_base}?token={token}&tail=0",
                max_size=None,
                open_timeout=60,
                ping_interval=None,
                compression=compression,
            ) as ws:
                connected += 1
                if connected == clients:
                    all_connected.set()
                async for message in ws:
                    now = time.time()
                    frame = orjson.loads(message)
                    if frame.get("type") != "events":
                        continue
                    for event in frame["data"]:
                        attrs = event.get("attributes") or {}
                        if attrs.get("bench") == marker:
                            latencies.append((now - attrs["bench_sent"]) * 1000)
                            received[i] += 1
            closes["closed_by_server"] += 1
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            closes[f"closed_{code}"] += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            closes[type(exc).__name__] += 1
        finally:
            if not all_connected.is_set() and connected + sum(closes.values()) >= clients:
                all_connected.set()

    readers = [asyncio.create_task(client(i)) for i in range(clients)]
    connect_start = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_connected.wait(), 60)
    connect_seconds = time.monotonic() - connect_start
    if on_connected is not None:
        on_connected()
    progress = None
    if on_progress is not None:

        async def report() -> None:
            while True:
                on_progress(sum(received))
                await asyncio.sleep(0.2)

        progress = asyncio.create_task(report())
    await asyncio.sleep(1.0)  # let the broadcast service finish its Redis subscriptions
    start = time.monotonic()
    if listen_only:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
    else:
        sent = await drive_ingest(
            url, writer_token, rate, duration, batch, seed, marker, stop, ingest_ms, ingest_errors
        )
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline and sum(received) < sent * clients:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    elapsed = time.monotonic() - start
    if progress is not None:
        progress.cancel()
        on_progress(sum(received))  # type: ignore[misc]
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    deliveries = sum(received)
    expected = sent * clients
    return summarize(
        scenario="e_fanout" if not listen_only else "c_tail",
        clients=clients,
        connected=connected,
        connect_seconds=connect_seconds,
        compression=compression,
        rate=None if listen_only else rate,
        batch=batch,
        sent=sent,
        ingest_ms=ingest_ms,
        ingest_errors=ingest_errors,
        events_per_s=None if listen_only else round(sent / duration, 1),
        deliveries=deliveries,
        expected=None if listen_only else expected,
        elapsed=elapsed,
        closes=closes,
        latencies=latencies,
    )


def summarize(
    *,
    scenario: str,
    clients: int,
    connected: int,
    connect_seconds: float,
    compression: str | None,
    rate: float | None,
    batch: int,
    sent: int,
    ingest_ms: list[float],
    ingest_errors: Counter[str],
    events_per_s: float | None,
    deliveries: int,
    expected: int | None,
    elapsed: float,
    closes: Counter[str],
    latencies: list[float],
    **extra: Any,
) -> dict[str, Any]:
    """The summary of one fan-out run (``latencies`` kept raw for merging)."""
    return {
        "scenario": scenario,
        "clients": clients,
        **extra,
        "connected": connected,
        "connect_seconds": round(connect_seconds, 2),
        "compression": compression,
        "target_rate": rate,
        "batch": batch,
        "events": sent,
        "requests": len(ingest_ms) + sum(ingest_errors.values()),
        "errors": sum(ingest_errors.values()),
        "ingest_errors": dict(ingest_errors),
        "ingest_ms": percentiles(ingest_ms),
        "events_per_s": events_per_s,
        "deliveries": deliveries,
        "expected_deliveries": expected,
        "delivered_ratio": round(deliveries / expected, 4) if expected else None,
        "deliveries_per_s": round(deliveries / elapsed, 1) if elapsed else 0.0,
        "closes": dict(closes),
        "seconds": round(elapsed, 2),
        "latency_ms": percentiles(latencies),
        "latencies": latencies,
    }


async def drive_ingest(
    url: str,
    writer_token: str | None,
    rate: float,
    duration: float,
    batch: int,
    seed: int,
    marker: str,
    stop: asyncio.Event,
    ingest_ms: list[float],
    ingest_errors: Counter[str],
) -> int:
    """POST ``rate`` events/s in bulk requests of ``batch``, each stamped with its send
    time; returns how many were accepted."""
    sent = 0
    gen = EventGenerator(seed)
    headers = {"Authorization": f"Bearer {writer_token}", "Content-Type": "application/json"}
    loop = asyncio.get_running_loop()
    interval = batch / rate
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(base_url=url) as session:

        async def post(body: bytes, n: int) -> None:
            nonlocal sent
            start = time.perf_counter()
            try:
                async with session.post("/api/v1/logs/bulk", data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 202:
                        sent += n
                        ingest_ms.append((time.perf_counter() - start) * 1000)
                    else:
                        ingest_errors[str(resp.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                ingest_errors[type(exc).__name__] += 1

        t0 = loop.time()
        i = 0
        while loop.time() - t0 < duration and not stop.is_set():
            due = t0 + i * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.time()
            events = gen.batch(batch)
            for e in events:
                e.setdefault("attributes", {}).update({"bench": marker, "bench_sent": now})
            task = loop.create_task(post(orjson.dumps(events), batch))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.gather(*tasks)
    return sent


def main() -> None:
    cfg = load_config()
    install_uvloop()

    async def run() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        processes = cfg.get("processes") or max(1, min(4, cfg.get("clients", 100) // 25))
        if not cfg.get("listen_only") and processes > 1:
            # Imported here: that module builds on this one's fanout().
            from benchmarks.ws_fanout_processes import fanout_processes

            return await fanout_processes(cfg, processes, stop)
        return await fanout(
            cfg["url"],
            cfg["viewer_tokens"],
            (cfg.get("writer_tokens") or [None])[0],
            clients=cfg.get("clients", 100),
            rate=cfg.get("rate", 1000),
            duration=cfg.get("duration", 20),
            batch=cfg.get("batch", 10),
            seed=cfg.get("seed", 1),
            drain=cfg.get("drain", 15),
            marker=cfg.get("marker"),
            listen_only=cfg.get("listen_only", False),
            compression=cfg.get("compression", "deflate"),
            stop=stop,
        )

    summary = asyncio.run(run())
    summary.pop("latencies", None)
    write_summary(cfg["summary_path"], summary)


if __name__ == "__main__":
    main()
