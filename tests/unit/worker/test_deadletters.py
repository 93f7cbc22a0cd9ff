"""The dead-letter depth gauge against a fake SQS client."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from services.worker.deadletters import ATTRIBUTES, read_depth, watch_dead_letters

DLQ_URL = "http://sqs.local/000000000000/logs-dlq"


class FakeClient:
    def __init__(self, attrs: dict[str, str] | None, error: Exception | None = None) -> None:
        self.attrs = attrs
        self.error = error
        self.calls: list[dict[str, Any]] = []
        self.asked = asyncio.Event()

    async def get_queue_attributes(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(kw)
        self.asked.set()
        if self.error:
            raise self.error
        return {"Attributes": self.attrs}


class FakeQueues:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    async def dlq_url(self) -> str:
        return DLQ_URL


def gauge() -> float | None:
    return REGISTRY.get_sample_value("logserver_dead_letter_messages")


async def test_depth_counts_visible_and_in_flight_of_the_dlq() -> None:
    client = FakeClient(
        {"ApproximateNumberOfMessages": "3", "ApproximateNumberOfMessagesNotVisible": "2"}
    )
    assert await read_depth(FakeQueues(client)) == 5  # type: ignore[arg-type]
    assert client.calls == [{"QueueUrl": DLQ_URL, "AttributeNames": ATTRIBUTES}]


async def test_watch_sets_the_gauge_and_keeps_it_on_a_failed_read() -> None:
    stop = asyncio.Event()
    queues = FakeQueues(FakeClient({"ApproximateNumberOfMessages": "7"}))
    task = asyncio.create_task(watch_dead_letters(queues, 0.01, stop))  # type: ignore[arg-type]
    await asyncio.wait_for(queues.client.asked.wait(), 1)
    await asyncio.sleep(0)  # the reply reaches the gauge
    assert gauge() == 7
    failing = FakeClient(None, error=ConnectionError("sqs away"))
    queues.client = failing
    await asyncio.wait_for(failing.asked.wait(), 1)
    await asyncio.sleep(0)
    assert gauge() == 7
    stop.set()
    await asyncio.wait_for(task, 1)
