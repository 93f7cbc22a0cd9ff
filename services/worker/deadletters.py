"""The dead-letter queue's depth as a metric, so Prometheus can alert on it too.

Messages land there after `worker_max_receives` failed deliveries (poison, or a
storage that kept refusing them): each holds events that were accepted with a
202 and are not stored. CloudWatch alarms on the same number in AWS
(docs/deploy.md); this gauge serves clusters without CloudWatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import Gauge

from services.core.clients import SqsQueues

log = logging.getLogger(__name__)
DEAD_LETTERS = Gauge(
    "logserver_dead_letter_messages",
    "Messages in the dead-letter queue (visible and in flight), as SQS approximates them",
)
ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


async def read_depth(sqs: SqsQueues) -> int:
    url = await sqs.dlq_url()
    resp = await sqs.client.get_queue_attributes(QueueUrl=url, AttributeNames=ATTRIBUTES)
    attrs = resp.get("Attributes", {})
    return sum(int(attrs.get(name, 0)) for name in ATTRIBUTES)


async def watch_dead_letters(sqs: SqsQueues, every: float, stop: asyncio.Event) -> None:
    """Set the gauge every ``every`` s until ``stop``; a failed read keeps the last value."""
    failing = False
    while not stop.is_set():
        try:
            DEAD_LETTERS.set(await read_depth(sqs))
            failing = False
        except Exception as exc:
            if not failing:
                log.warning("dead-letter queue depth unreadable", extra={"error": str(exc)[:300]})
            failing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
