"""Helpers for integration tests: polling with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, within: float = 30.0, every: float = 0.2
) -> T:
    """Call ``check`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {within}s (last: {last!r})")


def sqs_client(cfg):
    """An aioboto3 SQS client on the stack's queue endpoint (an async context manager)."""
    import aioboto3

    return aioboto3.Session().client(
        "sqs",
        endpoint_url=cfg.sqs_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


async def stored_total(http, headers: dict[str, str], **filters: str) -> int:
    resp = await http.get(
        "/api/v1/logs", params={"limit": 1, "total": "true", **filters}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["meta"]["total"]


async def ingest(
    http, writer: dict[str, str], events: list[dict], reader: dict[str, str] | None = None
) -> list[str]:
    """POST events in bulk (≤ 1,000 per request); with ``reader``, wait until all are stored."""
    before = await stored_total(http, reader) if reader else 0
    ids: list[str] = []
    for i in range(0, len(events), 1000):
        resp = await http.post("/api/v1/logs/bulk", json=events[i : i + 1000], headers=writer)
        assert resp.status_code == 202, resp.text
        ids.extend(resp.json()["ids"])
    if reader:
        expected = before + len(set(ids))

        async def done():
            return await stored_total(http, reader) >= expected

        await eventually(done, within=120)
    return ids


async def queue_drained(cfg) -> None:
    """Wait until the event queue holds no message, visible or in flight: whatever was
    accepted before has been stored (or dead-lettered) by then."""

    async with sqs_client(cfg) as sqs:
        url = (await sqs.get_queue_url(QueueName="logserver-events"))["QueueUrl"]

        async def empty() -> bool:
            attrs = (
                await sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )
            )["Attributes"]
            return all(int(v) == 0 for v in attrs.values())

        await eventually(empty, within=60)


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An API key sent directly, as HTTP Basic (what log shippers send)."""
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
