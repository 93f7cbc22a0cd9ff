"""Scenario bulk: POSTs of 1,000 events per request, a few users, a fixed request budget.

BENCH_CONFIG=cfg.json locust -f benchmarks/locust_bulk.py --headless -u 8 -r 8
"""

from __future__ import annotations

import itertools

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

from benchmarks.common import Recorder, bulk_body, install_recorder, load_config, writer_setup

CONFIG = load_config()
BATCH = CONFIG.get("batch", 1000)
# a handful of distinct bodies (built once: the generator is not what is measured)
BODIES = [bulk_body(CONFIG.get("seed", 1) + i, BATCH) for i in range(8)]
RECORDER = Recorder(budget=CONFIG.get("requests"))
_user_ids = itertools.count()


@events.init.add_listener
def _init(environment, **_):
    install_recorder(environment, RECORDER, CONFIG["summary_path"], scenario="b_bulk")


class BulkWriter(FastHttpUser):
    host = CONFIG["url"]
    wait_time = constant(0)
    connection_timeout = 60.0
    network_timeout = 120.0

    def on_start(self) -> None:
        self.headers, self.bodies = writer_setup(CONFIG, BODIES, next(_user_ids))

    @task
    def post_bulk(self) -> None:
        if not RECORDER.take():
            self.wait_time = lambda: 3600
            return
        self.client.post(
            "/api/v1/logs/bulk",
            data=next(self.bodies),
            headers=self.headers,
            name="POST /api/v1/logs/bulk",
            context={"events": BATCH},
        )
