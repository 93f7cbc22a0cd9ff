"""Start-up work that needs a backend which may not be up yet (indexes, bootstrap).

A service must start and answer /healthz even while MongoDB is still coming up
(Kubernetes starts pods in any order), so such work retries in the background
and /readyz reports the service not ready until it has succeeded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class StartupTasks:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._done: set[str] = set()

    def add(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        async def runner() -> None:
            delay = 0.2
            while True:
                try:
                    await work()
                    self._done.add(name)
                    return
                except Exception as exc:
                    log.warning(
                        "start-up step failed; retrying",
                        extra={"step": name, "error": str(exc)[:300]},
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

        self._tasks[name] = asyncio.create_task(runner(), name=f"startup:{name}")

    async def probe(self) -> None:
        """Readiness probe: raises while some start-up step has not succeeded yet."""
        pending = [n for n in self._tasks if n not in self._done]
        if pending:
            raise RuntimeError(f"start-up pending: {', '.join(pending)}")

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks.values())

    async def cancel(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
