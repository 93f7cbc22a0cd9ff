"""Settings of the worker (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CoreSettings


class WorkerSettings(CoreSettings):
    service_name: str = Field("worker", description="Name used in logs and metrics.")
    port: int = Field(8004, description="Port of the worker's health/metrics server.")
    worker_concurrency: int = Field(4, ge=1, le=64, description="Concurrent long-poll loops.")
    worker_wait_seconds: int = Field(20, ge=0, le=20, description="SQS long-poll wait.")
    worker_max_receives: int = Field(
        5, ge=1, description="Receives after which SQS dead-letters a message (match the queue)."
    )
    retention_interval_seconds: float = Field(
        300, gt=0, description="How often the retention sweep runs."
    )
    rollup_minute_hours: float = Field(
        24,
        gt=0,
        description="Age beyond which event counts are kept per hour instead of per minute "
        "(older minute buckets are folded into hours).",
    )
    rollup_interval_seconds: float = Field(
        30, gt=0, description="How often the worker repairs dirty rollups and folds old ones."
    )
    shutdown_grace_seconds: float = Field(
        25, gt=0, description="How long SIGTERM waits for batches in hand."
    )
