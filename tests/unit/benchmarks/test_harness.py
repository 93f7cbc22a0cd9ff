"""The benchmark harness's choices and report, without a stack: scenarios by name (and by
their old letters), the command line's parameters, and a stored results file rendered
with the same figures in the same places."""

from __future__ import annotations

import json

import pytest

from benchmarks.harness.__main__ import parse_args
from benchmarks.harness.parameters import RESULTS, Params
from benchmarks.harness.report import markdown, scenario_rows, targets
from benchmarks.harness.scenarios import SCENARIOS, choose


def test_scenarios_are_chosen_by_name_or_by_their_old_letter() -> None:
    assert choose("all") == [
        "single_event",
        "bulk",
        "mixed",
        "search",
        "fanout",
        "shippers",
        "noisy_neighbour",
    ]
    assert choose("bulk, fanout") == ["bulk", "fanout"]
    assert choose("a,g") == ["single_event", "noisy_neighbour"]  # `SCENARIO=a` keeps working
    with pytest.raises(SystemExit, match=r"unknown scenario.*: h, searches"):
        choose("h,searches")


def test_the_command_line_overrides_the_preset() -> None:
    quick = Params.make(parse_args(["--quick", "--users", "7", "--preload", "500"]))
    assert quick.quick and quick.single_event_users == 7 and quick.search_preload == 500
    assert quick.preload_given  # the storage-based default preload is not applied
    assert quick.bulk_users == 2  # the quick preset's
    full = Params.make(parse_args([]))
    assert not full.quick and not full.preload_given and full.single_event_requests == 10_000
    smoke = Params.make(parse_args(["--smoke", "--noisy-seconds", "4"]))
    assert smoke.tenants == 2 and smoke.noisy_seconds == 4


def test_a_results_file_renders_every_scenario_with_its_figures() -> None:
    doc = json.loads((RESULTS / "2026-11-30-hotpath.json").read_text())
    letters = {s.LETTER: name for name, s in SCENARIOS.items()}
    results = {letters[k]: v for k, v in doc["results"].items()}  # written before the names
    rows = scenario_rows(results)
    assert [r[0] for r in rows] == [
        "single_event closed loop",
        "single_event open loop",
        "bulk x1000",
    ]
    closed = results["single_event"]["closed"]
    assert rows[0][1] == f"{closed['req_per_s']:,.1f}"
    assert rows[0][5] == f"{closed['latency_ms']['p99']:,.1f}"
    met = targets(results, Params(quick=False), doc["machine"]["storage"])
    assert [t["target"].split(" ")[0] for t in met][:2] == ["closed", "open"]
    md = markdown(doc | {"results": results, "targets": met})
    assert "## CPU per request (ms) of each process" in md
    assert "| single_event closed loop |" in md and "| bulk x1000 |" in md
