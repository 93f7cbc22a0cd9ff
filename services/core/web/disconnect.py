"""Stop the work of an HTTP request whose client has gone away.

Nobody cancels a handler when its client disconnects: it runs to the end, and a
storage query it awaits keeps the storage busy for nobody. Cancelling the
PyMongo call closes its connection, and MongoDB (4.2+) kills a find, getMore,
aggregate or count whose connection closes. FerretDB v1 does not notice a
closed connection while a command runs; there only ``maxTimeMS`` ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import ClientDisconnect
from starlette.types import Receive

T = TypeVar("T")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # the request's (empty) body: what follows can only be the disconnect


async def cancel_on_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise
    :class:`ClientDisconnect` (answered 499, nginx's "client closed request").

    Only for requests whose body is not read: this consumes ``receive``.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the request itself is cancelled (server shutdown)
        watcher.cancel()
        await _stop(task)
        raise
    watcher.cancel()
    if task.done():  # finished first: its answer, or its error
        return task.result()
    await _stop(task)
    raise ClientDisconnect()


async def _stop(task: asyncio.Future[T]) -> None:
    task.cancel()
    # Wait for the work's own cleanup (closing its storage connection) to finish.
    await asyncio.wait((task,))
