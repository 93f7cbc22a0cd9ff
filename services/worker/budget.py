"""The bytes of events a worker holds parsed at once, shared by its consumer loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import Gauge

IN_HAND = Gauge(
    "logserver_worker_batch_bytes", "Bytes of events the consumer holds parsed right now"
)


class ByteBudget:
    """How many bytes of events the consumer loops may hold parsed at once.

    A worker's memory grows with the events in hand (Python objects take several
    times their JSON), so batches wait here for room rather than all parsing at
    once; a batch larger than the whole budget runs alone, so none waits forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._room = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        async with self._room:
            await self._room.wait_for(lambda: self.used == 0 or self.used + size <= self.limit)
            self.used += size
            IN_HAND.set(self.used)
        try:
            yield
        finally:
            async with self._room:
                self.used -= size
                IN_HAND.set(self.used)
                self._room.notify_all()
