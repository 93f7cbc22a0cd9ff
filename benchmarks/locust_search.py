"""Scenario search: filtered searches on a preloaded tenant, closed loop for a fixed time.

Filters a person would use (service + level, min_level, an audit action and
user, a CI attribute, a level alone), each a separate name in the summary so
slow filters are visible. Tokens: viewer keys of the preloaded tenant.

    BENCH_CONFIG=cfg.json locust -f benchmarks/locust_search.py --headless -u 10 -t 30s
"""

from __future__ import annotations

import random

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

from benchmarks.common import Recorder, install_recorder, load_config
from services.cli.generate import EventGenerator

CONFIG = load_config()
_gen = EventGenerator(CONFIG.get("preload_seed", 1))
USERS = _gen.users[:20]
PROJECTS = _gen.projects
RNG = random.Random(CONFIG.get("seed", 1))

QUERIES = {
    "service+level": lambda: {
        "service": RNG.choice(("api", "web", "billing", "payments")),
        "level": "ERROR",
    },
    "min_level": lambda: {"min_level": "ERROR"},
    "level=CRITICAL": lambda: {"level": "CRITICAL"},
    "action+user": lambda: {"action": "user.login", "user_id": RNG.choice(USERS)},
    "attributes.projectId": lambda: {"attributes.projectId": RNG.choice(PROJECTS)},
    "service": lambda: {"service": RNG.choice(("search", "jobs", "ci"))},
}
SEARCH_WEIGHTS = {name: 1 for name in QUERIES}


@events.init.add_listener
def _init(environment, **_):
    # On FerretDB/SQLite one query on a large tenant can take longer than the run: let
    # the queries in flight finish (or time out, as errors) instead of dropping them.
    environment.stop_timeout = CONFIG.get("stop_timeout", 95)
    install_recorder(
        environment,
        Recorder(),
        CONFIG["summary_path"],
        scenario="d_search",
        tenant=CONFIG.get("tenant"),
        preloaded=CONFIG.get("preloaded"),
    )


class Searcher(FastHttpUser):
    host = CONFIG["url"]
    wait_time = constant(0)
    network_timeout = 90.0

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {RNG.choice(CONFIG['viewer_tokens'])}"}

    @task
    def search(self) -> None:
        name = RNG.choice(list(QUERIES))
        params = {**QUERIES[name](), "limit": CONFIG.get("limit", 50)}
        self.client.get(
            "/api/v1/logs", params=params, headers=self.headers, name=f"GET /logs {name}"
        )
