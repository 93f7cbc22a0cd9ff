"""Shared by the locustfiles and the asyncio scenario scripts.

Every scenario reads its parameters from the JSON file named by
``$BENCH_CONFIG`` (written by ``benchmarks/harness``: gateway URL, tokens
from the real auth flow, counts, seed) and writes a summary JSON to
``config["summary_path"]``: requests, errors, events, wall seconds and exact
latency percentiles computed from every sample (not locust's rounded ones).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson


def install_uvloop() -> None:
    """The asyncio scripts are clients; uvloop makes them cheaper on the shared CPU."""
    import uvloop

    uvloop.install()


def load_config() -> dict[str, Any]:
    return json.loads(Path(os.environ["BENCH_CONFIG"]).read_text())


def percentiles(samples_ms: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 plus mean/max, in milliseconds."""
    if not samples_ms:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None, "min": None}
    values = sorted(samples_ms)
    n = len(values)

    def rank(p: float) -> float:
        return round(values[max(0, math.ceil(p / 100 * n) - 1)], 2)

    return {
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "mean": round(sum(values) / n, 2),
        "max": round(values[-1], 2),
        "min": round(values[0], 2),
    }


def write_summary(path: str | Path, summary: dict[str, Any]) -> None:
    Path(path).write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


def event_bodies(seed: int, n: int, *, marker: str | None = None) -> list[bytes]:
    """``n`` serialized single events from ``logserver generate``'s generator."""
    from services.cli.generate import EventGenerator

    gen = EventGenerator(seed)
    out = []
    for i in range(n):
        event = gen.event()
        if marker:
            event.setdefault("attributes", {})["bench"] = marker
            event["attributes"]["seq"] = i
        out.append(orjson.dumps(event))
    return out


def writer_setup(config: dict[str, Any], bodies: list[bytes], n: int) -> tuple[dict[str, str], Any]:
    """Headers with the n-th user's writer token (tenants taken round-robin) and the
    bodies rotated by n, so users do not all send the same body in lockstep."""
    token = config["writer_tokens"][n % len(config["writer_tokens"])]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    k = n % len(bodies)
    return headers, itertools.cycle(bodies[k:] + bodies[:k])


def bulk_body(seed: int, n: int) -> bytes:
    from services.cli.generate import EventGenerator

    return orjson.dumps(EventGenerator(seed).batch(n))


class Recorder:
    """Collects every request's latency (locust ``request`` event) and an optional budget.

    ``budget``: total requests the whole run may *issue* (hey's ``-n``); users ask
    :meth:`take` before each request, and the runner quits when the last one completes.
    """

    def __init__(self, budget: int | None = None) -> None:
        self.budget = budget
        self.issued = 0
        self.completed = 0
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.events = 0
        self.first_start: float | None = None
        self.last_end: float | None = None
        self.on_budget_done: Any = None

    def take(self) -> bool:
        if self.budget is not None and self.issued >= self.budget:
            return False
        self.issued += 1
        return True

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        now = time.time()
        start = start_time or (now - response_time / 1000)
        if self.first_start is None or start < self.first_start:
            self.first_start = start
        self.last_end = now
        self.completed += 1
        if exception is not None:
            self.errors[name] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{name}: {str(exception)[:200]}")
        else:
            self.latency[name].append(response_time)
            self.events += int((context or {}).get("events", 0))
        if (
            self.budget is not None
            and self.completed >= self.budget
            and self.on_budget_done is not None
        ):
            callback, self.on_budget_done = self.on_budget_done, None
            callback()

    def summary(self, **extra: Any) -> dict[str, Any]:
        wall = (self.last_end or 0) - (self.first_start or 0)
        all_ms = [v for values in self.latency.values() for v in values]
        ok = len(all_ms)
        errors = sum(self.errors.values())
        out: dict[str, Any] = {
            "requests": ok + errors,
            "ok": ok,
            "errors": errors,
            "error_samples": self.error_samples,
            "events": self.events,
            "seconds": round(wall, 3),
            "started": self.first_start,
            "req_per_s": round((ok + errors) / wall, 1) if wall > 0 else 0.0,
            "events_per_s": round(self.events / wall, 1) if wall > 0 else 0.0,
            "latency_ms": percentiles(all_ms),
            "by_name": {
                name: {
                    "requests": len(values) + self.errors.get(name, 0),
                    "errors": self.errors.get(name, 0),
                    "latency_ms": percentiles(values),
                }
                for name, values in sorted(self.latency.items())
            },
        }
        out.update(extra)
        return out


def install_recorder(environment: Any, recorder: Recorder, summary_path: str, **extra: Any) -> None:
    """Hook ``recorder`` into a locust environment and write the summary when it stops."""
    import gevent

    environment.events.request.add_listener(recorder.on_request)

    def quit_runner() -> None:
        gevent.spawn(environment.runner.quit)

    recorder.on_budget_done = quit_runner

    def on_stop(**_: Any) -> None:
        options = getattr(environment, "parsed_options", None)
        users = getattr(options, "num_users", None)
        write_summary(summary_path, recorder.summary(users=users, **extra))

    environment.events.test_stop.add_listener(on_stop)
