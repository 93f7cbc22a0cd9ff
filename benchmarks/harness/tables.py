"""The building blocks of the report that every scenario uses for its own lines: a
number formatted for the tables, a row of the scenario table from a load summary, a
row of the targets table."""

from __future__ import annotations

from typing import Any

Row = list[str]
Target = dict[str, Any]


def fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float | int):
        return f"{v:,.{digits}f}"
    return str(v)


def latency_cells(lat: dict[str, Any]) -> Row:
    """p50, p95, p99 and mean (ms), as the scenario table's columns."""
    return [fmt(lat.get(k), 1) for k in ("p50", "p95", "p99", "mean")]


def summary_row(label: str, s: dict[str, Any] | None, note: str = "") -> list[Row]:
    """One line of the scenario table from a load summary (none without a summary)."""
    if not s:
        return []
    return [
        [
            label,
            fmt(s.get("req_per_s"), 1),
            fmt(s.get("events_per_s")),
            *latency_cells(s.get("latency_ms") or {}),
            fmt(s.get("errors")),
            note,
        ]
    ]


def target(name: str, measured: str, met: bool | None, note: str = "") -> Target:
    """One line of the targets table; ``met`` None: reported, not judged."""
    return {"target": name, "measured": measured, "met": met, "note": note}
