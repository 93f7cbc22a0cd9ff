"""Work for an HTTP request stops when its client leaves."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from services.core.web.disconnect import cancel_on_disconnect


class Client:
    """ASGI ``receive`` of a GET: the (empty) request first, then whatever the test says."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.messages.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    async def receive(self) -> Message:
        return await self.messages.get()

    def leave(self) -> None:
        self.messages.put_nowait({"type": "http.disconnect"})


async def test_the_answer_when_the_work_finishes_first() -> None:
    client = Client()
    assert await cancel_on_disconnect(client.receive, asyncio.sleep(0, "answer")) == "answer"


async def test_errors_of_the_work_reach_the_caller() -> None:
    async def fails() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await cancel_on_disconnect(Client().receive, fails())


async def test_a_client_that_leaves_cancels_the_work() -> None:
    client = Client()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def long_query() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a storage query that would run for minutes
        finally:
            stopped.set()

    request = asyncio.create_task(cancel_on_disconnect(client.receive, long_query()))
    await started.wait()
    client.leave()
    with pytest.raises(ClientDisconnect):
        await asyncio.wait_for(request, 5)
    assert stopped.is_set()  # cancelled, and its cleanup ran before the request ended


async def test_cancelling_the_request_cancels_the_work() -> None:
    """Server shutdown cancels the handler: the work must not outlive it."""
    started, stopped = asyncio.Event(), asyncio.Event()

    async def long_query() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    request = asyncio.create_task(cancel_on_disconnect(Client().receive, long_query()))
    await started.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(stopped.wait(), 5)
