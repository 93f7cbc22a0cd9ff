"""The worker: persists queued events, publishes them for live tail, sweeps retention,
reports the dead-letter queue's depth, keeps the rollups true (recovery, compaction).

Its HTTP server only answers health and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from fastapi import FastAPI

from services.core.logs.repository import ensure_log_indexes
from services.core.logs.rollups import RollupWriter, backfill, compact, recover
from services.core.web.app import create_service_app
from services.core.web.state import clients, service_state, set_service_state, startup_tasks
from services.worker.consumer import Consumer
from services.worker.deadletters import watch_dead_letters
from services.worker.lease import Lease, holder_id
from services.worker.retention import Sweeper, run_periodically
from services.worker.settings import WorkerSettings
from services.worker.state import WorkerState

RETENTION_STOP_SECONDS = 5.0  # shutdown waits this long for a sweep to stop


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    minute_age = timedelta(hours=settings.rollup_minute_hours)
    rollup_lease = timedelta(seconds=settings.rollup_lease_seconds)

    async def startup(app: FastAPI) -> None:
        shared = clients(app)
        consumer = Consumer(
            shared.sqs,
            shared.db,
            shared.redis,
            concurrency=settings.worker_concurrency,
            wait_seconds=settings.worker_wait_seconds,
            max_receives=settings.worker_max_receives,
            max_batch_bytes=settings.worker_max_batch_bytes,
            rollups=RollupWriter(shared.db, rollup_lease),
            ring_size=settings.recent_events,
        )
        state = WorkerState(consumer)
        set_service_state(app, state)
        # One lease per database, so stacks sharing a Redis do not block each other.
        lease = Lease(
            shared.redis,
            f"logserver:retention-lease:{settings.mongodb_database}",
            holder_id(),
            settings.retention_interval_seconds,
        )
        sweeper = Sweeper(
            shared.db,
            lease,
            interval=settings.retention_interval_seconds,
            budget=settings.retention_budget_seconds,
            stop=state.stop,
            redis_client=shared.redis,
            rollup_lease=rollup_lease,
        )

        async def rollups() -> None:
            # Recovery first: the counts of batches (and deletes) whose process died
            # are written before the day they belong to is compacted.
            await recover(shared.db, rollup_lease)
            await compact(shared.db, minute_age, rollup_lease)

        async def begin() -> None:
            # Indexes before the first insert: building them later locks a busy collection.
            await ensure_log_indexes(shared.db)
            # Rollups of events stored before rollups existed (once per storage).
            await backfill(shared.db)
            consumer.start()
            state.retention = asyncio.create_task(sweeper.run())
            state.dead_letters = asyncio.create_task(
                watch_dead_letters(shared.sqs, settings.dead_letter_poll_seconds, state.stop)
            )
            state.rollups = asyncio.create_task(
                run_periodically(
                    settings.rollup_interval_seconds, state.stop, rollups, "rollup recovery"
                )
            )

        startup_tasks(app).add("indexes-and-consumer", begin)

    async def shutdown(app: FastAPI) -> None:
        state = service_state(app, WorkerState)
        state.stop.set()
        await state.consumer.close(settings.shutdown_grace_seconds)
        if state.dead_letters:
            state.dead_letters.cancel()
        if state.rollups:
            await state.rollups
        if state.retention:
            # The sweep stops at its next delete; one still running past the bound is
            # cancelled (the storage stops it at its maxTimeMS).
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(state.retention, RETENTION_STOP_SECONDS)

    return create_service_app(
        name="worker",
        settings=settings,
        needs=("mongo", "sqs", "redis"),
        on_startup=startup,
        on_shutdown=shutdown,
        authenticates=False,
        document_ops=True,  # its only routes: health and metrics
        # No load balancer sends it traffic: readiness gates its rollouts, and a
        # worker that cannot move events from SQS into MongoDB must not replace
        # one that can. Redis (live tail) is best effort.
        ready_needs=("sqs", "mongodb", "startup"),
    )
