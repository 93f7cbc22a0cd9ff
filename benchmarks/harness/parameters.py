"""What a benchmark run is given: the sizes of every scenario (full, ``--quick`` and
``--smoke`` presets, then the command-line overrides), where things are, and the
progress line the harness prints."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
QUEUE = os.environ.get("LOGSERVER_SQS_QUEUE_NAME", "logserver-events")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# Each field is prefixed with the scenario it sizes (results files before the scenarios
# had names used the letters: a_ single_event, b_ bulk, c_ mixed, d_ search, e_ fanout,
# f_ shippers, g_ noisy).
@dataclass
class Params:
    quick: bool
    seed: int = 42
    tenants: int = 4
    single_event_users: int = 1000
    single_event_requests: int = 10_000
    open_rate: float = 1000
    open_seconds: float = 10
    bulk_users: int = 8  # enough bulk clients to keep the log service busy (4 left it idle 80 %)
    bulk_requests: int = 300
    raw_docs: int = 20_000
    mixed_seconds: float = 60
    mixed_users: int = 60
    mixed_tail_clients: int = 20
    search_preload: int = 1_000_000
    search_users: int = 4
    search_seconds: float = 30
    fanout_clients: int = 100
    fanout_rate: float = 1000
    fanout_seconds: float = 20
    fanout_batch: int = 10
    fanout_processes: int = 0  # listener processes; 0: one per 25 clients, at most 4
    shippers_requests: int = 60  # requests of 1,000 records per protocol
    shippers_users: int = 4
    noisy_seconds: float = 30  # each phase (quiet, flood)
    noisy_b_rate: float = 200  # tenant B's steady single-event POSTs per second
    # Tenant A's ingest_events_per_second (it offers 5x that): what A may send is load
    # the 2-core machine carries for everyone, so it is B's rate, not a fifth of capacity.
    noisy_a_limit: int = 200
    noisy_flood_factor: float = 5
    noisy_a_batch: int = 50
    noisy_a_searchers: int = 4  # heavy-search clients of A (its max_concurrent_queries: 1)
    noisy_a_preload: int = 5_000  # FerretDB v1 reads the whole collection for every search
    noisy_b_preload: int = 1_000
    drain_timeout: float = 600
    preload_given: bool = False

    @classmethod
    def make(cls, args: argparse.Namespace) -> Params:
        if getattr(args, "smoke", False):
            # for tests/integration/test_benchmark_smoke.py: proves each scenario runs
            p = cls(
                quick=True,
                tenants=2,
                single_event_users=10,
                single_event_requests=60,
                open_rate=40,
                open_seconds=1,
                bulk_users=1,
                bulk_requests=2,
                raw_docs=1000,
                mixed_seconds=3,
                mixed_users=6,
                mixed_tail_clients=2,
                search_preload=300,
                search_users=2,
                search_seconds=2,
                fanout_clients=2,
                fanout_rate=50,
                fanout_seconds=2,
                fanout_processes=2,  # exercise the multi-process listeners too
                shippers_requests=3,
                shippers_users=1,
                drain_timeout=30,
                noisy_seconds=2,
                noisy_b_rate=20,
                noisy_a_limit=100,
                noisy_a_batch=20,
                noisy_a_searchers=2,
                noisy_a_preload=300,
                noisy_b_preload=50,
            )
        elif args.quick:
            p = cls(
                quick=True,
                single_event_users=50,
                single_event_requests=500,
                open_rate=200,
                open_seconds=2,
                bulk_users=2,
                bulk_requests=6,
                raw_docs=3000,
                mixed_seconds=4,
                mixed_users=15,
                mixed_tail_clients=5,
                search_preload=3000,
                search_users=4,
                search_seconds=3,
                fanout_clients=5,
                fanout_rate=200,
                fanout_seconds=3,
                shippers_requests=9,
                shippers_users=2,
                drain_timeout=60,
                noisy_seconds=5,
                noisy_a_preload=2000,
                noisy_b_preload=200,
            )
        else:
            p = cls(quick=False)
        p.preload_given = getattr(args, "search_preload", None) is not None
        for name in OVERRIDES:
            value = getattr(args, name, None)
            if value is not None:
                setattr(p, name, value)
        return p


# The fields the command line may set (see the harness's --help).
OVERRIDES = (
    "seed",
    "single_event_users",
    "single_event_requests",
    "open_rate",
    "open_seconds",
    "bulk_users",
    "mixed_seconds",
    "search_preload",
    "fanout_clients",
    "fanout_rate",
    "fanout_seconds",
    "shippers_requests",
    "noisy_seconds",
)
