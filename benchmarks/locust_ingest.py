"""Scenario single_event, closed loop: N users with no think time, a fixed request budget.

The original project's ``hey -n 10000 -c 1000``: 1,000 users issue 10,000
requests in total as fast as answers come back, then the run stops (the
budget is shared, so exactly ``requests`` are sent). Tokens are writer keys of
several tenants; user i uses tenant i mod T.

    BENCH_CONFIG=cfg.json locust -f benchmarks/locust_ingest.py --headless -u 1000 -r 1000
"""

from __future__ import annotations

import itertools
import random

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

from benchmarks.common import (
    Recorder,
    event_bodies,
    install_recorder,
    load_config,
    writer_setup,
)

CONFIG = load_config()
random.seed(CONFIG.get("seed", 1))
BODIES = event_bodies(CONFIG.get("seed", 1), 2000)
RECORDER = Recorder(budget=CONFIG.get("requests"))
_user_ids = itertools.count()


@events.init.add_listener
def _init(environment, **_):
    install_recorder(environment, RECORDER, CONFIG["summary_path"], scenario="a_closed")


class SingleEventWriter(FastHttpUser):
    host = CONFIG["url"]
    wait_time = constant(0)
    connection_timeout = 60.0
    network_timeout = 60.0

    def on_start(self) -> None:
        self.headers, self.bodies = writer_setup(CONFIG, BODIES, next(_user_ids))

    @task
    def post_one(self) -> None:
        if not RECORDER.take():
            self.wait_time = lambda: 3600  # budget spent: idle until the runner quits
            return
        self.client.post(
            "/api/v1/logs",
            data=next(self.bodies),
            headers=self.headers,
            name="POST /api/v1/logs",
            context={"events": 1},
        )
