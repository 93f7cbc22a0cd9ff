"""The worker reports its dead-letter queue's depth in /metrics (for alerts where
CloudWatch is not at hand). A worker of its own on a queue pair of its own."""

from __future__ import annotations

import secrets

import httpx
import pytest

from services.cli.stack import ProcessGroup, StackConfig
from tests.integration.helpers import (
    create_queue_pair,
    eventually,
    metric_total,
    sqs_client,
    start_replica,
)

pytestmark = pytest.mark.integration


async def test_dead_letter_depth_is_a_metric(stack: ProcessGroup, cfg: StackConfig) -> None:
    queue = f"dead-{secrets.token_hex(3)}"
    await create_queue_pair(cfg, queue)
    name = f"worker-{queue}"
    url = start_replica(
        stack,
        name,
        "worker",
        {
            "LOGSERVER_SQS_QUEUE_NAME": queue,
            "LOGSERVER_SQS_DLQ_NAME": f"{queue}-dlq",
            "LOGSERVER_DEAD_LETTER_POLL_SECONDS": "0.5",
        },
    )
    try:
        async with sqs_client(cfg) as sqs, httpx.AsyncClient(timeout=10) as http:

            async def depth(expected: float):
                text = (await http.get(f"{url}/metrics")).text
                return metric_total(text, "logserver_dead_letter_messages") == expected

            await eventually(lambda: depth(0), within=30)
            dlq = (await sqs.get_queue_url(QueueName=f"{queue}-dlq"))["QueueUrl"]
            for n in range(2):
                await sqs.send_message(QueueUrl=dlq, MessageBody=f'{{"dead": {n}}}')
            await eventually(lambda: depth(2), within=30)
    finally:
        stack.stop(name)
