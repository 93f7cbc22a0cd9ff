"""The worker: persists queued events, publishes them for live tail, sweeps retention,
reports the dead-letter queue's depth, keeps the rollups true (recovery, compaction).

Its HTTP server only answers health and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from fastapi import FastAPI

from services.core.app import create_service_app
from services.core.repository import ensure_log_indexes
from services.core.rollups import RollupWriter, backfill, compact, recover
from services.worker.consumer import Consumer
from services.worker.deadletters import watch_dead_letters
from services.worker.lease import Lease, holder_id
from services.worker.retention import Sweeper, run_periodically
from services.worker.settings import WorkerSettings

RETENTION_STOP_SECONDS = 5.0  # shutdown waits this long for a sweep to stop


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    minute_age = timedelta(hours=settings.rollup_minute_hours)
    rollup_lease = timedelta(seconds=settings.rollup_lease_seconds)

    async def startup(app: FastAPI) -> None:
        clients = app.state.clients
        consumer = Consumer(
            clients.sqs,
            clients.db,
            clients.redis,
            concurrency=settings.worker_concurrency,
            wait_seconds=settings.worker_wait_seconds,
            max_receives=settings.worker_max_receives,
            max_batch_bytes=settings.worker_max_batch_bytes,
            rollups=RollupWriter(clients.db, rollup_lease),
            ring_size=settings.recent_events,
        )
        app.state.consumer = consumer
        app.state.stop = asyncio.Event()
        # One lease per database, so stacks sharing a Redis do not block each other.
        lease = Lease(
            clients.redis,
            f"logserver:retention-lease:{settings.mongodb_database}",
            holder_id(),
            settings.retention_interval_seconds,
        )
        sweeper = Sweeper(
            clients.db,
            lease,
            interval=settings.retention_interval_seconds,
            budget=settings.retention_budget_seconds,
            stop=app.state.stop,
            redis_client=clients.redis,
            rollup_lease=rollup_lease,
        )

        async def rollups() -> None:
            # Recovery first: the counts of batches (and deletes) whose process died
            # are written before the day they belong to is compacted.
            await recover(clients.db, rollup_lease)
            await compact(clients.db, minute_age, rollup_lease)

        async def begin() -> None:
            # Indexes before the first insert: building them later locks a busy collection.
            await ensure_log_indexes(clients.db)
            # Rollups of events stored before rollups existed (once per storage).
            await backfill(clients.db)
            consumer.start()
            app.state.retention = asyncio.create_task(sweeper.run())
            app.state.dead_letters = asyncio.create_task(
                watch_dead_letters(clients.sqs, settings.dead_letter_poll_seconds, app.state.stop)
            )
            app.state.rollups = asyncio.create_task(
                run_periodically(
                    settings.rollup_interval_seconds, app.state.stop, rollups, "rollup recovery"
                )
            )

        app.state.startup.add("indexes-and-consumer", begin)

    async def shutdown(app: FastAPI) -> None:
        app.state.stop.set()
        await app.state.consumer.close(settings.shutdown_grace_seconds)
        dead_letters = getattr(app.state, "dead_letters", None)
        if dead_letters:
            dead_letters.cancel()
        rollups = getattr(app.state, "rollups", None)
        if rollups:
            await rollups
        retention = getattr(app.state, "retention", None)
        if retention:
            # The sweep stops at its next delete; one still running past the bound is
            # cancelled (the storage stops it at its maxTimeMS).
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(retention, RETENTION_STOP_SECONDS)

    return create_service_app(
        name="worker",
        settings=settings,
        needs=("mongo", "sqs", "redis"),
        on_startup=startup,
        on_shutdown=shutdown,
        authenticates=False,
        # No load balancer sends it traffic: readiness gates its rollouts, and a
        # worker that cannot move events from SQS into MongoDB must not replace
        # one that can. Redis (live tail) is best effort.
        ready_needs=("sqs", "mongodb", "startup"),
    )
