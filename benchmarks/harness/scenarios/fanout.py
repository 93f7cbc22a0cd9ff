"""WebSocket fan-out: ``fanout_clients`` live-tail clients of one tenant, ingest at
``fanout_rate`` events/s in bulks of ``fanout_batch``; the latency of each delivery
from its POST (gateway → log → queue → worker → storage → Redis → broadcast → client).

Load: ``benchmarks/ws_fanout.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.harness.parameters import Params, log
from benchmarks.harness.tables import Row, Target, fmt, latency_cells, target

if TYPE_CHECKING:
    from benchmarks.harness.runner import Runner

NAME = "fanout"
LETTER = "e"
TITLE = "WebSocket fan-out ingest→receive"


def run(r: Runner) -> dict[str, Any]:
    p = r.p
    tenant = r.tenants[0]
    fan = r.script(
        NAME,
        "ws_fanout.py",
        timeout=p.fanout_seconds + 180,
        clients=p.fanout_clients,
        rate=p.fanout_rate,
        duration=p.fanout_seconds,
        batch=p.fanout_batch,
        processes=p.fanout_processes,
        drain=30 if not p.quick else 10,
        viewer_tokens=[tenant["viewer_token"]],
        writer_tokens=[tenant["writer_token"]],
    )
    log(
        f"  fan-out {fan['clients']} clients at {p.fanout_rate:.0f} events/s: p50 "
        f"{fan['latency_ms']['p50']} ms, p99 {fan['latency_ms']['p99']} ms, delivered "
        f"{fan['delivered_ratio']}"
    )
    return {"fanout": fan}


def rows(result: dict[str, Any]) -> list[Row]:
    f = result["fanout"]
    return [
        [
            NAME,
            fmt(f["requests"] / max(f["seconds"], 1e-9), 1),
            fmt(f["events_per_s"]),
            *latency_cells(f["latency_ms"]),
            fmt(f["errors"]),
            f"{f['clients']} clients, ingest→receive, delivered {f['delivered_ratio']}",
        ]
    ]


def cpu_phases(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(NAME, result["fanout"])]


def targets(result: dict[str, Any], params: Params, storage: str) -> list[Target]:
    f = result["fanout"]
    return [
        target(
            f"ingest→WebSocket p99 ≤ 250 ms at {params.fanout_rate:,.0f} events/s, "
            f"{params.fanout_clients} clients",
            f"p99 {f['latency_ms']['p99']} ms, delivered {f['delivered_ratio']}",
            f["latency_ms"]["p99"] is not None
            and f["latency_ms"]["p99"] <= 250
            and (f["delivered_ratio"] or 0) >= 0.999,
        )
    ]
