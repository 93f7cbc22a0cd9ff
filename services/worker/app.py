"""The worker: persists queued events, publishes them for live tail, sweeps retention,
keeps the rollups true (recovery, compaction).

Its HTTP server only answers health and metrics.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from services.core.app import create_service_app
from services.core.logstore import ensure_log_indexes
from services.core.rollups import RollupWriter, backfill, compact, recover
from services.worker.consumer import Consumer
from services.worker.retention import run_periodically, sweep
from services.worker.settings import WorkerSettings


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    minute_age = timedelta(hours=settings.rollup_minute_hours)
    lease = timedelta(seconds=settings.rollup_lease_seconds)

    async def startup(app: FastAPI) -> None:
        clients = app.state.clients
        consumer = Consumer(
            clients.sqs,
            clients.db,
            clients.redis,
            concurrency=settings.worker_concurrency,
            wait_seconds=settings.worker_wait_seconds,
            max_receives=settings.worker_max_receives,
            rollups=RollupWriter(clients.db, lease),
            ring_size=settings.recent_events,
        )
        app.state.consumer = consumer
        app.state.stop = asyncio.Event()

        async def retention() -> None:
            await sweep(clients.db, redis_client=clients.redis, lease=lease)

        async def rollups() -> None:
            # Recovery first: the counts of batches (and deletes) whose process died
            # are written before the day they belong to is compacted.
            await recover(clients.db, lease)
            await compact(clients.db, minute_age, lease)

        async def begin() -> None:
            # Indexes before the first insert: building them later locks a busy collection.
            await ensure_log_indexes(clients.db)
            # Rollups of events stored before rollups existed (once per storage).
            await backfill(clients.db)
            consumer.start()
            stop = app.state.stop
            app.state.periodic = [
                asyncio.create_task(
                    run_periodically(
                        settings.retention_interval_seconds, stop, retention, "retention sweep"
                    )
                ),
                asyncio.create_task(
                    run_periodically(
                        settings.rollup_interval_seconds, stop, rollups, "rollup repair"
                    )
                ),
            ]

        app.state.startup.add("indexes-and-consumer", begin)

    async def shutdown(app: FastAPI) -> None:
        app.state.stop.set()
        await app.state.consumer.stop(settings.shutdown_grace_seconds)
        for task in getattr(app.state, "periodic", []):
            await task

    return create_service_app(
        name="worker",
        settings=settings,
        needs=("mongo", "sqs", "redis"),
        on_startup=startup,
        on_shutdown=shutdown,
        authenticates=False,
    )
