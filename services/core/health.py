"""Liveness and readiness: `/healthz` says the process runs, `/readyz` that its backends answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.core.errorbus import ErrorBus

Probe = Callable[[], Awaitable[object]]
log = logging.getLogger(__name__)


@dataclass
class Readiness:
    """Runs every dependency probe concurrently with a timeout and remembers transitions."""

    bus: ErrorBus
    timeout: float
    probes: dict[str, Probe] = field(default_factory=dict)
    _down: set[str] = field(default_factory=set)

    def add(self, name: str, probe: Probe) -> None:
        self.probes[name] = probe

    async def _run(self, probe: Probe) -> str | None:
        try:
            await asyncio.wait_for(probe(), self.timeout)
            return None
        except TimeoutError:
            return f"no answer within {self.timeout:g}s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    async def check(self) -> dict[str, str]:
        """Return ``{dependency: "ok" | reason}`` and publish newly lost backends."""
        names = list(self.probes)
        results = await asyncio.gather(*(self._run(self.probes[n]) for n in names))
        report: dict[str, str] = {}
        for name, error in zip(names, results, strict=True):
            report[name] = error or "ok"
            if error and name not in self._down:
                self._down.add(name)
                log.warning("dependency lost", extra={"dependency": name, "error": error})
                await self.bus.publish("dependency_lost", error, dependency=name)
            elif not error and name in self._down:
                self._down.discard(name)
                log.info("dependency back", extra={"dependency": name})
        return report
