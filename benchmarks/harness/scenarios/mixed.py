"""Mixed traffic: locust users ingesting and searching side by side while WebSocket
clients tail the tenant and time each stamped event from its POST to its arrival.

Load: ``benchmarks/locust_mixed.py``, ``benchmarks/ws_fanout.py`` (listening only).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from benchmarks.harness.parameters import BENCH, REPO, Params, log
from benchmarks.harness.tables import Row, Target, fmt, latency_cells, summary_row

if TYPE_CHECKING:
    from benchmarks.harness.runner import Runner

NAME = "mixed"
LETTER = "c"
TITLE = "mixed ingest + search + tail"


def run(r: Runner) -> dict[str, Any]:
    p = r.p
    marker = f"mixed-{secrets.token_hex(3)}"
    tail_cfg, tail_summary = r.config(
        f"{NAME}_tail",
        clients=p.mixed_tail_clients,
        duration=p.mixed_seconds + 5,
        listen_only=True,
        marker=marker,
    )
    tail_log = (r.work / f"{NAME}_tail.log").open("wb")
    tail = subprocess.Popen(
        [sys.executable, str(BENCH / "ws_fanout.py")],
        env=r.env(tail_cfg),
        stdout=tail_log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    time.sleep(3 if not p.quick else 2)  # tail clients connected before the load starts
    try:
        mixed = r.locust(
            f"{NAME}_load",
            "locust_mixed.py",
            p.mixed_users,
            run_time=p.mixed_seconds,
            marker=marker,
        )
    finally:
        try:
            tail.wait(timeout=p.mixed_seconds + 90)
        except subprocess.TimeoutExpired:
            tail.terminate()
            tail.wait(10)
        tail_log.close()
    tail_result = json.loads(tail_summary.read_text()) if tail_summary.exists() else None
    log(
        f"  mixed: {mixed['req_per_s']:.0f} req/s, p99 {mixed['latency_ms']['p99']} ms, "
        f"errors {mixed['errors']}; tail p99 "
        f"{(tail_result or {}).get('latency_ms', {}).get('p99')} ms"
    )
    return {"mixed": mixed, "tail": tail_result}


def rows(result: dict[str, Any]) -> list[Row]:
    out = summary_row(NAME, result["mixed"], f"{result['mixed']['seconds']:.0f} s")
    t = result.get("tail")
    if t:
        out.append(
            [
                f"{NAME}: tail",
                "-",
                fmt(t["deliveries_per_s"]),
                *latency_cells(t["latency_ms"]),
                fmt(sum(v for k, v in t["closes"].items() if k != "closed_by_server")),
                f"{t['clients']} WS clients, ingest→receive",
            ]
        )
    return out


def cpu_phases(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(NAME, result["mixed"])]


def targets(result: dict[str, Any], params: Params, storage: str) -> list[Target]:
    return []
