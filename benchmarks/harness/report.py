"""The report of a run: the machine it ran on, the targets table (each scenario's
targets and every service's RSS), the markdown document (the scenario table, CPU per
request of each process in each phase, targets, RSS and queue depth per scenario)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from benchmarks.harness.parameters import Params
from benchmarks.harness.scenarios import SCENARIOS
from benchmarks.harness.scenarios.bulk import LOG_CPU_US_PER_EVENT_TARGET
from benchmarks.harness.scenarios.single_event import LOG_CPU_MS_TARGET
from benchmarks.harness.stack import Target, storage_name
from benchmarks.harness.tables import Row, fmt, target

SERVICES = ("auth", "tenant", "log", "worker", "broadcast")


def machine_info(target: Target) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    storage = storage_name(target)
    try:  # never `import locust` here: it monkey-patches this process with gevent
        from importlib.metadata import version

        locust_version = version("locust")
    except Exception:
        locust_version = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "storage": storage,
        "queue": "ElasticMQ (SQS API)" if target.sqs_url else "unknown",
        "locust": locust_version,
        "load_generator": "same machine",
    }


def targets(results: dict[str, Any], params: Params, storage: str) -> list[dict[str, Any]]:
    rows = []
    for name, scenario in SCENARIOS.items():
        if name in results:
            rows += scenario.targets(results[name], params, storage)
    rss: dict[str, float] = {}
    for r in results.values():
        for name, mb in r.get("resources", {}).get("rss_max_mb", {}).items():
            rss[name] = max(rss.get(name, 0), mb)
    services = {n: v for n, v in rss.items() if n in SERVICES}
    if services:
        worst = max(services, key=services.__getitem__)
        rows.append(
            target(
                "each service's RSS ≤ 200 MB under load",
                ", ".join(f"{n} {v:.0f}" for n, v in services.items()) + " MB",
                services[worst] <= 200,
            )
        )
    return rows


def scenario_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, scenario in SCENARIOS.items():
        if name in results:
            rows += scenario.rows(results[name])
    return rows


def cpu_phases(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each load phase's summary, labelled as in the scenario table."""
    out = []
    for name, scenario in SCENARIOS.items():
        if name in results:
            out += [(label, s) for label, s in scenario.cpu_phases(results[name]) if s]
    return [(label, s) for label, s in out if s.get("cpu_ms_per_request")]


def cpu_table(results: dict[str, Any]) -> list[str]:
    """CPU per request of every process in every phase (utime + stime from /proc)."""
    phases = cpu_phases(results)
    if not phases:
        return []
    names: list[str] = []
    for _, s in phases:
        names += [n for n in s["cpu_ms_per_request"] if n not in names]
    out = [
        "",
        "## CPU per request (ms) of each process",
        "",
        "utime + stime from `/proc/<pid>/stat` (with children) over the phase, divided by "
        "its requests; the log service's targets are ≤ "
        f"{LOG_CPU_MS_TARGET} ms per single-event request and ≤ "
        f"{LOG_CPU_US_PER_EVENT_TARGET} µs per event in 1,000-event bulks.",
        "",
        "| phase | " + " | ".join(names) + " | log µs / event |",
        "|---|" + "---:|" * len(names) + "---:|",
    ]
    for label, s in phases:
        cpu = s["cpu_ms_per_request"]
        per_event = (s.get("cpu_us_per_event") or {}).get("log")
        out.append(
            f"| {label} | "
            + " | ".join(fmt(cpu.get(n), 3) for n in names)
            + f" | {fmt(per_event, 1)} |"
        )
    return out


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    out = [
        f"# Benchmark {doc['date']}{' (quick smoke run)' if doc['quick'] else ''}",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu_model']}, {m['memory_gb']} GB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}, locust {m['locust']}. "
        f"Storage: **{m['storage']}**; queue: {m['queue']}; load generator on the same machine.",
        "",
        "| scenario | req/s | events/s | p50 ms | p95 ms | p99 ms | mean ms | errors | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in scenario_rows(doc["results"])]
    out += cpu_table(doc["results"])
    out += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in doc["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        note = f" ({t['note']})" if t["note"] else ""
        out.append(f"| {t['target']} | {t['measured']}{note} | {met} |")
    out += ["", "## Max RSS per process (MB) and queue depth", ""]
    names: list[str] = []
    for r in doc["results"].values():
        for n in r.get("resources", {}).get("rss_max_mb", {}):
            if n not in names:
                names.append(n)
    if names:
        out.append("| scenario | " + " | ".join(names) + " | max queue depth | depth over time |")
        out.append("|---|" + "---:|" * len(names) + "---:|---|")
        for key, r in doc["results"].items():
            res = r.get("resources", {})
            series = res.get("queue_depth_series") or []
            step = max(1, len(series) // 12)
            spark = " ".join(f"{t:.0f}s:{d}" for t, d in series[::step])
            out.append(
                f"| {key} | "
                + " | ".join(fmt(res.get("rss_max_mb", {}).get(n)) for n in names)
                + f" | {fmt(res.get('queue_depth_max'))} | {spark} |"
            )
    out += [
        "",
        "Queue depth = ApproximateNumberOfMessages + NotVisible (messages, each holding "
        "many events); t is seconds since the benchmark started.",
        "",
        "Notes:",
        "- Latencies are exact percentiles over every request (not locust's rounded ones). "
        "The closed-loop run stops after exactly the request budget; the open-loop run "
        "measures each request from its scheduled send time, so queueing in the load "
        "generator is counted too.",
        "- FerretDB v1 on SQLite filters in Go, sorts in memory (docs/architecture.md#backends): "
        "search latencies and the raw insert_many rate are those of this dev backend, "
        "not of MongoDB.",
        "- Reproduce: `make benchmark` (all) or `make benchmark SCENARIO=single_event` "
        f"(one); parameters: `{json.dumps(doc['params'])}`.",
    ]
    if doc.get("notes"):
        out += [f"- {n}" for n in doc["notes"]]
    return "\n".join(out) + "\n"
