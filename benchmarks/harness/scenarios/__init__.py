"""The scenarios, one module each, in the order `make benchmark` runs them.

A scenario module has ``NAME`` (what ``--scenario`` and the results files call it),
``LETTER`` (its name before they had names: still accepted), ``TITLE``, and four
functions: ``run(runner)`` (the load; returns its results), ``rows(result)`` (its lines
of the report's scenario table), ``cpu_phases(result)`` (its load phases for the CPU
table) and ``targets(result, params, storage)`` (its lines of the targets table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from benchmarks.harness.scenarios import (
    bulk,
    fanout,
    mixed,
    noisy_neighbour,
    search,
    shippers,
    single_event,
)

if TYPE_CHECKING:
    from benchmarks.harness.parameters import Params
    from benchmarks.harness.runner import Runner
    from benchmarks.harness.tables import Row, Target


class Scenario(Protocol):
    NAME: str
    LETTER: str
    TITLE: str

    def run(self, r: Runner) -> dict[str, Any]: ...
    def rows(self, result: dict[str, Any]) -> list[Row]: ...
    def cpu_phases(self, result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]: ...
    def targets(self, result: dict[str, Any], params: Params, storage: str) -> list[Target]: ...


SCENARIOS: dict[str, Scenario] = {
    m.NAME: m for m in (single_event, bulk, mixed, search, fanout, shippers, noisy_neighbour)
}
BY_LETTER = {s.LETTER: s.NAME for s in SCENARIOS.values()}


def choose(spec: str) -> list[str]:
    """``all``, or a comma list of names (or the old letters a-g); in the order given."""
    if spec == "all":
        return list(SCENARIOS)
    names = [BY_LETTER.get(s.strip(), s.strip()) for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(
            f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)} "
            "(or all)"
        )
    return names
