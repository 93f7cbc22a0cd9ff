"""Noisy neighbour: does one tenant's flood cost another anything? Tenant B sends a
steady open loop of single events and light searches, alone (quiet) and then while
tenant A floods ingest at ``noisy_flood_factor`` times its limit and runs heavy
searches (flood); B's latencies side by side, A's answers by status.

Load: ``benchmarks/noisy_neighbour.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmarks.harness.parameters import Params, log
from benchmarks.harness.sampling import metric_sum
from benchmarks.harness.tables import Row, Target, fmt, latency_cells, target

if TYPE_CHECKING:
    from benchmarks.harness.runner import Runner

NAME = "noisy_neighbour"
LETTER = "g"
TITLE = "noisy neighbour: one tenant floods ingest and searches, another's latency"
UNENFORCED = "logserver_limits_unenforced_total"


def run(r: Runner) -> dict[str, Any]:
    p = r.p
    a, b = r.admin.tenant("noisy-a"), r.admin.tenant("quiet-b")
    keys = {
        t: (
            r.admin.key(t, "writer", name="bench writer"),
            r.admin.key(t, "viewer", name="bench viewer"),
        )
        for t in (a, b)
    }
    log(f"  preloading {p.noisy_a_preload:,} events into {a} and {p.noisy_b_preload:,} into {b}")
    for tenant, count, seed in (
        (a, p.noisy_a_preload, p.seed + 5),
        (b, p.noisy_b_preload, p.seed + 6),
    ):
        r.generate(
            keys[tenant][0], count, "--seed", str(seed), "--spread", "3600", "--quiet", timeout=1800
        )
    r.drain(f"{NAME} preload")
    limits = {
        "ingest_events_per_second": p.noisy_a_limit,
        "ingest_burst": p.noisy_a_limit,
        "max_concurrent_queries": 1,
    }
    r.admin.update_tenant(a, limits=limits)
    r.sampler.label = NAME
    skipped_before = metric_sum(r.target.log_url, UNENFORCED) or 0.0
    noisy = r.script(
        NAME,
        "noisy_neighbour.py",
        timeout=2 * p.noisy_seconds + 300,
        seconds=p.noisy_seconds,
        warmup=1.0 if not p.quick else 0.5,
        b_rate=p.noisy_b_rate,
        a_limit=p.noisy_a_limit,
        flood_factor=p.noisy_flood_factor,
        a_batch=p.noisy_a_batch,
        a_searchers=p.noisy_a_searchers,
        a_writer=r.admin.token(*keys[a][0]),
        a_viewer=r.admin.token(*keys[a][1]),
        b_writer=r.admin.token(*keys[b][0]),
        b_viewer=r.admin.token(*keys[b][1]),
    )
    # Limits fail open when Redis does not answer in time: say if that happened.
    noisy["limit_checks_unenforced"] = (metric_sum(r.target.log_url, UNENFORCED) or 0.0) - (
        skipped_before
    )
    q, f = noisy["quiet"], noisy["flood"]
    log(
        f"  B ingest p99 {q['b_ingest']['latency_ms']['p99']} ms quiet, "
        f"{f['b_ingest']['latency_ms']['p99']} ms with A's flood "
        f"(x{noisy['b_ingest_p99_ratio']}); B search p95 "
        f"{q['b_search']['latency_ms']['p95']} / {f['b_search']['latency_ms']['p95']} ms; "
        f"A offered {f['a_ingest']['offered_events_per_s']:,.0f} events/s, accepted "
        f"{f['a_ingest']['accepted_events_per_s']:,.0f}/s, statuses "
        f"{f['a_ingest']['statuses']}, A searches {f['a_search']['statuses']}; "
        f"limit checks unenforced: {noisy['limit_checks_unenforced']:.0f}"
    )
    return {"noisy": noisy, "tenants": {"a": a, "b": b}, "a_limits": limits}


def rows(result: dict[str, Any]) -> list[Row]:
    n = result["noisy"]
    out: list[Row] = []
    for phase in ("quiet", "flood"):
        for kind, label in (("b_ingest", "B ingest"), ("b_search", "B search")):
            s = n[phase][kind]
            errors = sum(v for k, v in s["statuses"].items() if not k.startswith("2"))
            out.append(
                [
                    f"{NAME} {phase}: {label}",
                    fmt(s["req_per_s"], 1),
                    fmt(s["req_per_s"]) if kind == "b_ingest" else "-",
                    *latency_cells(s["latency_ms"]),
                    fmt(errors),
                    "from due time" + (", A flooding" if phase == "flood" else ", A idle"),
                ]
            )
    a_in, a_se = n["flood"]["a_ingest"], n["flood"]["a_search"]
    out.append(
        [
            f"{NAME} flood: A ingest",
            fmt(a_in["req_per_s"], 1),
            fmt(a_in["accepted_events_per_s"]),
            *latency_cells(a_in["latency_ms"]),
            "-",
            f"offered {a_in['offered_events_per_s']:,.0f} events/s; statuses "
            f"{a_in['statuses']}; A searches {a_se['statuses']}",
        ]
    )
    return out


def cpu_phases(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return []  # two tenants, two phases: no single count of requests to divide by


def targets(result: dict[str, Any], params: Params, storage: str) -> list[Target]:
    n = result["noisy"]
    q, fl = n["quiet"]["b_ingest"]["latency_ms"], n["flood"]["b_ingest"]["latency_ms"]
    ratio = n["b_ingest_p99_ratio"]
    sq, sf = n["quiet"]["b_search"]["latency_ms"], n["flood"]["b_search"]["latency_ms"]
    return [
        target(
            f"noisy neighbour: B's ingest p99 with A flooding at {n['flood_factor']:g}x its "
            "limit ≤ 1.5 x quiet",
            f"p99 {q['p99']} ms quiet, {fl['p99']} ms flooded (x{ratio}); "
            f"B search p95 {sq['p95']} / {sf['p95']} ms (x{n['b_search_p95_ratio']})",
            ratio is not None and ratio <= 1.5,
        )
    ]
