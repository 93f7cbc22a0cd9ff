"""Helpers for integration tests: polling with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

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


async def set_limits(api: Any, tenant: str, **limits: int | None) -> dict:
    """PATCH the tenant's limits as the platform admin (``api``: the ``Api`` fixture);
    the limits that apply now."""
    resp = await api.http.patch(
        f"/api/v1/tenants/{tenant}", json={"limits": limits}, headers=api.admin
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["limits"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_replica(stack, name: str, service: str, env: dict[str, str] | None = None) -> str:
    """Start one more process of ``service`` (the stack's own settings plus ``env``) on
    a free port, under the stack's control; return its base URL. Stop it with
    ``stack.stop(name)``; the session's teardown stops it too."""
    from services.cli.stack import ProcSpec

    base = stack.specs[service]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stack.add(
        ProcSpec(
            name,
            base.argv,
            {**base.env, **(env or {}), "LOGSERVER_PORT": str(port)},
            ("http", f"{url}/healthz"),
        )
    )
    stack.start(name)
    stack.wait([name], timeout=90)
    return url


def metric_total(text: str, name: str) -> float:
    """The sum over all label sets of sample ``name`` in a /metrics page."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def create_queue_pair(cfg, name: str, max_receives: int = 5) -> None:
    """A queue ``name`` dead-lettering into ``name-dlq`` after ``max_receives``
    receives, as the stack's own (for workers that must not touch the session's)."""
    import orjson

    async with sqs_client(cfg) as sqs:
        dlq_url = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
        attrs = await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
        redrive = {
            "deadLetterTargetArn": attrs["Attributes"]["QueueArn"],
            "maxReceiveCount": str(max_receives),
        }
        await sqs.create_queue(
            QueueName=name, Attributes={"RedrivePolicy": orjson.dumps(redrive).decode()}
        )


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


@contextlib.contextmanager
def extra_log_service(stack: Any, name: str, **env: str) -> Iterator[str]:
    """Another log service process against the same backends (its URL), stopped after;
    a second use of ``name`` starts the same process again."""
    if name in stack.specs:
        url = stack.specs[name].probe[1].removesuffix("/healthz")
        stack.start(name)
        stack.wait([name], timeout=90)
    else:
        url = start_replica(stack, name, "log", env)
    try:
        yield url
    finally:
        stack.stop(name)
