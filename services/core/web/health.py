"""Liveness and readiness: `/healthz` says the process runs, `/readyz` whether it can serve.

Every dependency is probed and reported, but only the checks a service names
as *required* decide its readiness: a pod leaves the load balancer only when it
cannot serve its own traffic. The log service's ingest needs SQS, not MongoDB;
failing readiness on a MongoDB blip would turn a storage outage into 503s at
the edge for the one path built to ride it out. The other checks stay visible
in `/readyz`'s body, in the `logserver_dependency_up` gauge and on the error bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import Gauge

from services.core.errorbus import ErrorBus

Probe = Callable[[], Awaitable[object]]
log = logging.getLogger(__name__)

DEPENDENCY_UP = Gauge(
    "logserver_dependency_up",
    "1 while the dependency answered its last readiness probe, else 0 "
    "(required: whether it decides the service's readiness)",
    ["service", "dependency", "required"],
)
NOT_REGISTERED = "required, but no probe is registered"


@dataclass
class Readiness:
    """Runs every dependency probe concurrently with a timeout and remembers transitions.

    ``required`` names the checks that decide readiness; ``None`` means all of them.
    """

    bus: ErrorBus
    timeout: float
    service: str = ""
    required: frozenset[str] | None = None
    probes: dict[str, Probe] = field(default_factory=dict)
    _down: set[str] = field(default_factory=set)

    def add(self, name: str, probe: Probe) -> None:
        self.probes[name] = probe

    def require(self, names: Iterable[str] | None) -> None:
        self.required = None if names is None else frozenset(names)

    def decides(self, name: str) -> bool:
        return self.required is None or name in self.required

    async def _run(self, probe: Probe) -> str | None:
        try:
            await asyncio.wait_for(probe(), self.timeout)
            return None
        except TimeoutError:
            return f"no answer within {self.timeout:g}s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    async def check(self) -> dict[str, str]:
        """Return ``{check: "ok" | reason}`` for every check, publish newly lost backends
        and set the gauges. A required check nobody registered is reported as failing."""
        names = list(self.probes)
        results = await asyncio.gather(*(self._run(self.probes[n]) for n in names))
        report: dict[str, str] = {}
        for name, error in zip(names, results, strict=True):
            report[name] = error or "ok"
            DEPENDENCY_UP.labels(self.service, name, str(self.decides(name)).lower()).set(
                0 if error else 1
            )
            if error and name not in self._down:
                self._down.add(name)
                log.warning("dependency lost", extra={"dependency": name, "error": error})
                await self.bus.publish("dependency_lost", error, dependency=name)
            elif not error and name in self._down:
                self._down.discard(name)
                log.info("dependency back", extra={"dependency": name})
        for name in sorted((self.required or frozenset()) - report.keys()):
            report[name] = NOT_REGISTERED
        return report

    def blocking(self, report: dict[str, str]) -> list[str]:
        """The failing checks of ``report`` that make the service not ready."""
        return [name for name, state in report.items() if state != "ok" and self.decides(name)]
