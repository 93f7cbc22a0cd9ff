"""Scenario mixed: load for a fixed time: single-event writers, bulk writers, searchers.

The tail part (WebSocket clients measuring ingest→receive latency) runs next
to it as ``benchmarks/ws_fanout.py --listen-only``, started by the runner;
writers here stamp ``attributes.bench_sent`` so those clients can measure.

    BENCH_CONFIG=cfg.json locust -f benchmarks/locust_mixed.py --headless -u 60 -t 60s
"""

from __future__ import annotations

import itertools
import random
import time

import orjson
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

from benchmarks.common import Recorder, install_recorder, load_config
from services.cli.generate import EventGenerator

CONFIG = load_config()
RNG = random.Random(CONFIG.get("seed", 1))
GEN = EventGenerator(CONFIG.get("seed", 1))
MARKER = CONFIG.get("marker", "mixed")
_ids = itertools.count()


def stamped(n: int) -> list[dict]:
    now = time.time()
    out = []
    for event in GEN.batch(n):
        event.setdefault("attributes", {}).update({"bench": MARKER, "bench_sent": now})
        out.append(event)
    return out


@events.init.add_listener
def _init(environment, **_):
    install_recorder(environment, Recorder(), CONFIG["summary_path"], scenario="c_mixed")


class _Base(FastHttpUser):
    abstract = True
    host = CONFIG["url"]
    network_timeout = 60.0

    def on_start(self) -> None:
        n = next(_ids)
        w = CONFIG["writer_tokens"]
        v = CONFIG["viewer_tokens"]
        self.write = {
            "Authorization": f"Bearer {w[n % len(w)]}",
            "Content-Type": "application/json",
        }
        self.read = {"Authorization": f"Bearer {v[n % len(v)]}"}


class Writer(_Base):
    weight = 6
    wait_time = between(0.02, 0.08)

    @task
    def post_one(self) -> None:
        self.client.post(
            "/api/v1/logs",
            data=orjson.dumps(stamped(1)[0]),
            headers=self.write,
            name="POST /api/v1/logs",
            context={"events": 1},
        )


class BulkWriter(_Base):
    weight = 1
    wait_time = between(0.5, 1.0)

    @task
    def post_bulk(self) -> None:
        self.client.post(
            "/api/v1/logs/bulk",
            data=orjson.dumps(stamped(100)),
            headers=self.write,
            name="POST /api/v1/logs/bulk",
            context={"events": 100},
        )


class Searcher(_Base):
    weight = 3
    wait_time = between(0.2, 0.6)

    @task(3)
    def filtered(self) -> None:
        params = {"service": RNG.choice(("api", "web", "billing")), "min_level": "WARNING"}
        self.client.get("/api/v1/logs", params=params, headers=self.read, name="GET /logs filtered")

    @task(1)
    def recent(self) -> None:
        self.client.get(
            "/api/v1/logs", params={"limit": 20}, headers=self.read, name="GET /logs recent"
        )
