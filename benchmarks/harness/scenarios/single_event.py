"""Single-event POSTs: a closed loop (``hey -n 10000 -c 1000``: 1,000 users, a fixed
request budget, no think time) for throughput, then an open loop at a fixed rate with
latency from each request's due time (no coordinated omission).

Load: ``benchmarks/locust_ingest.py``, ``benchmarks/open_loop.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.harness.parameters import Params, log
from benchmarks.harness.tables import Row, Target, summary_row, target

if TYPE_CHECKING:
    from benchmarks.harness.runner import Runner

NAME = "single_event"
LETTER = "a"
TITLE = "single-event POST (closed loop + open loop)"
# Issue 18: the log service's CPU per request, read from /proc (machine noise moves it
# much less than throughput), so one process takes twice the traffic.
LOG_CPU_MS_TARGET = 0.28


def run(r: Runner) -> dict[str, Any]:
    p = r.p
    closed = r.locust(
        f"{NAME}_closed",
        "locust_ingest.py",
        p.single_event_users,
        run_time=600,
        requests=p.single_event_requests,
    )
    log(
        f"  closed loop: {closed['req_per_s']:.0f} req/s, p99 {closed['latency_ms']['p99']} "
        f"ms, errors {closed['errors']}"
    )
    r.drain(NAME)
    opened = r.script(
        f"{NAME}_open",
        "open_loop.py",
        timeout=p.open_seconds + 120,
        rate=p.open_rate,
        duration=p.open_seconds,
        warmup=1.0 if not p.quick else 0.5,
    )
    log(
        f"  open loop {p.open_rate:.0f}/s: p50 {opened['latency_ms']['p50']} ms, "
        f"p99 {opened['latency_ms']['p99']} ms, errors {opened['errors']}"
    )
    return {"closed": closed, "open": opened}


def rows(result: dict[str, Any]) -> list[Row]:
    c, o = result["closed"], result["open"]
    return summary_row(
        f"{NAME} closed loop",
        c,
        f"{c['requests']:,} requests, {c.get('users', '')} users, {c['seconds']:.1f} s",
    ) + summary_row(
        f"{NAME} open loop", o, f"target {o['target_rate']:,.0f} req/s, latency from due time"
    )


def cpu_phases(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{NAME} closed loop", result["closed"]), (f"{NAME} open loop", result["open"])]


def targets(result: dict[str, Any], params: Params, storage: str) -> list[Target]:
    c = result["closed"]
    lat = c["latency_ms"]
    ok = (
        c["req_per_s"] >= 2000
        and c["errors"] == 0
        and lat["p99"] is not None
        and lat["p99"] <= 2 * lat["mean"]
    )
    out = [
        target(
            "closed loop 1,000 clients x 10,000: ≥ 2,000 req/s, 0 errors, p99 ≤ 2 x mean",
            f"{c['req_per_s']:,.0f} req/s, {c['errors']} errors, mean {lat['mean']} ms, "
            f"p99 {lat['p99']} ms ({(lat['p99'] or 0) / (lat['mean'] or 1):.1f} x mean)",
            ok,
        )
    ]
    o = result["open"]
    out.append(
        target(
            f"open loop at {params.open_rate:,.0f} req/s: p99 ≤ 50 ms",
            f"p99 {o['latency_ms']['p99']} ms, {o['errors']} errors",
            o["latency_ms"]["p99"] is not None and o["latency_ms"]["p99"] <= 50 and not o["errors"],
        )
    )
    log_ms = (c.get("cpu_ms_per_request") or {}).get("log")
    if log_ms is not None:
        out.append(
            target(
                f"log service CPU per single-event request ≤ {LOG_CPU_MS_TARGET} ms (closed loop)",
                f"{log_ms:.3f} ms at {c['req_per_s']:,.0f} req/s, p99 {lat['p99']} ms",
                log_ms <= LOG_CPU_MS_TARGET,
            )
        )
    return out
