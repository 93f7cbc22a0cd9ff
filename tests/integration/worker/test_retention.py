"""One retention sweeper at a time, however many worker replicas run.

Two extra worker processes on a database and queue of their own (so the
session's worker and queue are untouched), sweeping every second: together they
sweep about once a second, not twice, and both compete for the lease.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis
from pymongo import AsyncMongoClient

from services.cli.stack import ProcessGroup, StackConfig
from services.core.credentials import TENANTS
from services.core.logs.model import LOGS
from tests.integration.helpers import (
    create_queue_pair,
    eventually,
    metric_total,
    start_replica,
)

pytestmark = pytest.mark.integration

INTERVAL = 1.0


async def _counts(http: httpx.AsyncClient, urls: list[str]) -> tuple[float, float]:
    sweeps = skipped = 0.0
    for url in urls:
        text = (await http.get(f"{url}/metrics")).text
        sweeps += metric_total(text, "logserver_retention_sweeps_total")
        skipped += metric_total(text, "logserver_retention_skipped_total")
    return sweeps, skipped


async def test_two_workers_sweep_one_at_a_time(stack: ProcessGroup, cfg: StackConfig) -> None:
    tag = secrets.token_hex(3)
    db_name, queue = f"sweep_{tag}", f"sweep-{tag}"
    await create_queue_pair(cfg, queue)
    mongo = AsyncMongoClient(cfg.mongodb_url, serverSelectionTimeoutMS=20000)
    db = mongo[db_name]
    # something to sweep: a tenant keeping 1 day, and an event of last week
    await db[TENANTS].insert_one({"_id": "swept", "retention_days": 1})
    old = datetime.now(UTC) - timedelta(days=7)
    await db[LOGS].insert_one({"_id": "swept:e1", "tenant_id": "swept", "timestamp": old})
    env = {
        "LOGSERVER_MONGODB_DATABASE": db_name,
        "LOGSERVER_SQS_QUEUE_NAME": queue,
        "LOGSERVER_SQS_DLQ_NAME": f"{queue}-dlq",
        "LOGSERVER_RETENTION_INTERVAL_SECONDS": str(INTERVAL),
    }
    names = [f"worker-sweep-{tag}-{i}" for i in (1, 2)]
    r = aioredis.from_url(cfg.redis_url)
    try:
        urls = [start_replica(stack, name, "worker", env) for name in names]
        async with httpx.AsyncClient(timeout=10) as http:
            for url in urls:

                async def ready(url: str = url):
                    return (await http.get(f"{url}/readyz")).status_code == 200

                await eventually(ready, within=60)
            await eventually(lambda: _gone(db), within=30)  # the old event was swept

            sweeps0, skipped0 = await _counts(http, urls)
            start = time.monotonic()

            async def window_over():
                return time.monotonic() - start >= 8 * INTERVAL

            await eventually(window_over, within=30)
            sweeps1, skipped1 = await _counts(http, urls)
            elapsed = time.monotonic() - start

            async def held():
                return (await r.get(f"logserver:retention-lease:{db_name}") or b"").decode()

            holder = await eventually(held, within=10, every=0.05)
            pids = {str(stack.procs[name].pid) for name in names}
    finally:
        for name in names:
            stack.stop(name)
        await r.aclose()
        await mongo.drop_database(db_name)
        await mongo.close()

    sweeps, skipped = sweeps1 - sweeps0, skipped1 - skipped0
    # One sweep per lease period (the interval), not one per replica: two
    # independent sweepers would make about 2 * elapsed / INTERVAL.
    assert 1 <= sweeps <= elapsed / INTERVAL + 1, (sweeps, elapsed)
    assert skipped >= 1, "the other replica found the lease taken"
    assert holder.split(":")[1] in pids, (holder, pids)  # one of the two holds it


async def _gone(db) -> bool:
    return await db[LOGS].count_documents({"_id": "swept:e1"}) == 0
