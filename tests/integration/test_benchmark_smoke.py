"""`make benchmark` cannot rot: a seconds-long run of every scenario against the test stack.

Not a performance test (the README's targets are measured by `make benchmark`, never
by timed tests): it asserts only that each scenario ran, produced numbers and
saw no errors, and that the report files were written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness.scenarios import SCENARIOS
from services.cli.stack import REPO, ProcessGroup, StackConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(cfg: StackConfig, stack: ProcessGroup, tmp_path_factory) -> dict[str, Any]:
    """Runs the benchmark harness with --smoke in its own process (locust's pytest plugin loads
    gevent into this one) against the test stack, as `LOGSERVER_URL=... make benchmark`
    would against a running one."""
    work = tmp_path_factory.mktemp("bench")
    cfg.save()  # stack.json: backend URLs and ports for the runner (queue depth, RSS)
    env = os.environ | {
        "LOGSERVER_URL": cfg.gateway_url,
        "LOGSERVER_STACK_FILE": str(cfg.data_dir / "stack.json"),
        "LOGSERVER_CLIENT_ID": cfg.admin_client_id,
        "LOGSERVER_CLIENT_SECRET": cfg.admin_client_secret,
    }
    argv = [
        sys.executable,
        "-m",
        "benchmarks.harness",
        "--smoke",
        "--out-dir",
        str(work / "results"),
        "--work-dir",
        str(work / "run"),
        "--name",
        "smoke",
    ]
    log = work / "runner.log"
    with log.open("w") as fh:
        proc = subprocess.run(
            argv, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, timeout=240, check=False
        )
    assert proc.returncode == 0, log.read_text()[-4000:]
    doc = json.loads((work / "results" / "smoke.json").read_text())
    doc["_out"] = work / "results"
    return doc


def _ok(summary: dict[str, Any]) -> None:
    assert summary["requests"] > 0, summary
    assert summary["errors"] == 0, summary.get("error_samples") or summary
    lat = summary["latency_ms"]
    for key in ("p50", "p95", "p99", "mean"):
        assert lat[key] is not None and lat[key] >= 0, lat
    assert lat["p50"] <= lat["p95"] <= lat["p99"]


def test_single_event_closed_and_open_loop(report: dict[str, Any]) -> None:
    closed = report["results"]["single_event"]["closed"]
    _ok(closed)
    assert closed["requests"] == report["params"]["single_event_requests"]  # the budget, exactly
    assert closed["req_per_s"] > 0
    opened = report["results"]["single_event"]["open"]
    _ok(opened)
    assert opened["service_ms"]["p99"] is not None


def test_bulk_and_persisted_ratio(report: dict[str, Any]) -> None:
    b = report["results"]["bulk"]
    _ok(b["bulk"])
    assert b["bulk"]["events"] == 1000 * report["params"]["bulk_requests"]
    assert b["raw_insert_many"]["docs_per_s"] > 0
    assert b["persisted"]["events"] >= b["bulk"]["events"]
    assert b["persisted"]["ratio_of_raw_insert_many"] > 0


def test_mixed_with_tail(report: dict[str, Any]) -> None:
    c = report["results"]["mixed"]
    _ok(c["mixed"])
    # A few-second smoke run need not reach a search task (searchers pause 0.2-0.6 s and
    # start last); what must hold is that the mixed scenario ran and ingested.
    assert "POST /api/v1/logs" in set(c["mixed"]["by_name"])
    assert c["tail"]["connected"] == report["params"]["mixed_tail_clients"]
    assert c["tail"]["deliveries"] > 0


def test_search_on_preloaded_tenant(report: dict[str, Any]) -> None:
    d = report["results"]["search"]
    assert d["preload"]["events"] == report["params"]["search_preload"]
    assert d["preload"]["stored"] == report["params"]["search_preload"]
    _ok(d["search"])


def test_fanout_delivers_to_every_client(report: dict[str, Any]) -> None:
    f = report["results"]["fanout"]["fanout"]
    _ok(f)
    assert f["connected"] == report["params"]["fanout_clients"]
    assert f["processes"] == 2  # the listeners ran in child processes
    assert f["delivered_ratio"] == 1.0


def test_shipper_protocols_beside_bulk(report: dict[str, Any]) -> None:
    shippers = report["results"]["shippers"]
    protocols = shippers["protocols"]
    assert set(protocols) == {"bulk", "bulk_basic", "otlp", "loki", "elastic"}
    assert shippers["log_pid"]  # the log service's CPU was read
    for name, summary in protocols.items():
        _ok(summary)
        assert summary["events"] == 1000 * summary["requests"], name
        assert summary["log_cpu_ms_per_1000_events"] >= 0, name
    # Each protocol's few smoke requests may take less than one clock tick (10 ms) of
    # the log service's CPU (our bulk does); together they take several.
    assert sum(s["log_cpu_ms_per_1000_events"] for s in protocols.values()) > 0


def test_noisy_neighbour_measures_b_quiet_and_flooded(report: dict[str, Any]) -> None:
    n = report["results"]["noisy_neighbour"]["noisy"]
    for phase in ("quiet", "flood"):
        ingest = n[phase]["b_ingest"]
        assert set(ingest["statuses"]) == {"202"}, ingest  # B is never refused
        assert ingest["latency_ms"]["p99"] is not None
        assert n[phase]["b_search"]["requests"] > 0
    flood = n["flood"]["a_ingest"]
    assert flood["statuses"].get("429", 0) > 0  # A, at 5x its limit, is refused...
    assert flood["statuses"].get("202", 0) > 0  # ...but not stopped
    assert n["b_ingest_p99_ratio"] is not None


def test_report_files_and_resources(report: dict[str, Any]) -> None:
    out: Path = report["_out"]
    doc = json.loads((out / "smoke.json").read_text())
    assert list(doc["results"]) == list(SCENARIOS)  # every one, in order
    assert doc["machine"]["nproc"] >= 1 and doc["machine"]["storage"]
    md = (out / "smoke.md").read_text()
    assert "| scenario | req/s |" in md and "## Targets" in md
    rss = doc["results"]["single_event"]["resources"]["rss_max_mb"]
    assert {"log", "worker", "broadcast"} <= set(rss) and rss["log"] > 0
    assert doc["targets"] and all("measured" in t for t in doc["targets"])


def test_cpu_per_request_of_every_process_in_every_phase(report: dict[str, Any]) -> None:
    r = report["results"]
    phases = {
        "single_event closed": r["single_event"]["closed"],
        "single_event open": r["single_event"]["open"],
        "bulk": r["bulk"]["bulk"],
        "mixed": r["mixed"]["mixed"],
        "search": r["search"]["search"],
        "fanout": r["fanout"]["fanout"],
        "shippers": r["shippers"],
    }
    services = {"auth", "tenant", "log", "worker", "broadcast", "gateway"}
    for name, summary in phases.items():
        cpu = summary["cpu_ms_per_request"]
        assert services <= set(cpu), (name, cpu)
        assert all(v >= 0 for v in cpu.values()), (name, cpu)
    assert r["bulk"]["bulk"]["cpu_us_per_event"]["log"] > 0  # 1,000-event requests: CPU seen
    md = (report["_out"] / "smoke.md").read_text()
    assert "## CPU per request (ms) of each process" in md
    targets = " ".join(t["target"] for t in report["targets"])
    assert "CPU per single-event request" in targets and "CPU per event in 1,000-event" in targets
