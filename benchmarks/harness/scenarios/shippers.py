"""Log shipper protocols beside our own bulk: the same 1,000-event batches as bulk
JSON (bearer, then the API key as HTTP Basic), OTLP protobuf, Loki snappy protobuf and
Elasticsearch NDJSON, in interleaved rounds; accepted events/s and the log service's
own CPU per 1,000 events.

Load: ``benchmarks/shippers.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.harness.parameters import Params, log
from benchmarks.harness.tables import Row, Target, fmt, summary_row, target

if TYPE_CHECKING:
    from benchmarks.harness.runner import Runner

NAME = "shippers"
LETTER = "f"
TITLE = "log shipper protocols (OTLP, Loki, Elasticsearch) beside bulk, 1,000 records/request"


def run(r: Runner) -> dict[str, Any]:
    p = r.p
    tenant = r.tenants[0]
    log_pid = r.target.pids.get("log")
    if not log_pid:
        r.notes.append(f"({NAME}) the log service's pid was not found: no CPU per event.")
    result = r.script(
        NAME,
        "shippers.py",
        timeout=900,
        requests=p.shippers_requests,
        users=p.shippers_users,
        rounds=3,
        batch=1000,
        writer_key=list(tenant["writer"]),
        log_pid=log_pid,
    )
    for name, s in result["protocols"].items():
        log(
            f"  {name}: {s['events_per_s'] or 0:,.0f} events/s, log CPU "
            f"{s['log_cpu_ms_per_1000_events']} ms per 1,000 events "
            f"({s['cpu_ratio_to_bulk']} x bulk), errors {s['errors']}"
        )
    return result


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for name, s in result["protocols"].items():
        out += summary_row(
            f"{NAME} {name} x1000",
            s | {"req_per_s": s["requests"] / s["seconds"] if s["seconds"] else None},
            f"log CPU {fmt(s['log_cpu_ms_per_1000_events'], 1)} ms / 1,000 events "
            f"= {fmt(s['cpu_ratio_to_bulk'], 2)} x bulk",
        )
    return out


def cpu_phases(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{NAME} (all protocols)", result)]


def targets(result: dict[str, Any], params: Params, storage: str) -> list[Target]:
    protocols = result["protocols"]
    ratios = {
        name: s["cpu_ratio_to_bulk"]
        for name, s in protocols.items()
        if name in ("otlp", "loki", "elastic")
    }
    return [
        target(
            "shipper protocols: log service CPU per event ≤ 1.5 x our bulk's",
            ", ".join(f"{n} {r} x" for n, r in ratios.items())
            + f" (bulk {protocols['bulk']['log_cpu_ms_per_1000_events']} ms / 1,000 events)",
            all(r is not None and r <= 1.5 for r in ratios.values()),
        )
    ]
