"""Share one in-flight call among concurrent callers asking for the same key.

Used where a burst of requests would otherwise each do the same slow thing
(fetch the JWKS, verify a token, look a credential up in MongoDB). Waiting on a
shared future also wakes every waiter in the same event-loop turn, unlike an
``asyncio.Lock``, which hands over to one waiter per turn and, under load,
made a queue of a thousand requests wait seconds behind each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._calls: dict[Hashable, asyncio.Future[T]] = {}

    def __contains__(self, key: Hashable) -> bool:
        return key in self._calls

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` unless a call for ``key`` is in flight; then await that one.

        A caller that is cancelled does not cancel the shared call (the others
        still wait for it).
        """
        future = self._calls.get(key)
        if future is None:
            future = asyncio.ensure_future(call())
            self._calls[key] = future
            future.add_done_callback(lambda f: self._done(key, f))
        return await asyncio.shield(future)

    def _done(self, key: Hashable, future: asyncio.Future[T]) -> None:
        self._calls.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved: no "never retrieved" warning if all callers left
