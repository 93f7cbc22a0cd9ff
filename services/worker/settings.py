"""Settings of the worker (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CoreSettings


class WorkerSettings(CoreSettings):
    service_name: str = Field("worker", description="Name used in logs and metrics.")
    port: int = Field(8004, description="Port of the worker's health/metrics server.")
    worker_concurrency: int = Field(4, ge=1, le=64, description="Concurrent long-poll loops.")
    worker_wait_seconds: int = Field(20, ge=0, le=20, description="SQS long-poll wait.")
    worker_max_batch_bytes: int = Field(
        6 * 2**20,
        ge=256 * 1024,
        description="Bytes of events (their JSON) all consumer loops hold at once; batches "
        "wait for room. Bounds the worker's memory: the bulk benchmark's peak RSS was 323 MB "
        "at 6 MiB, 351 MB at 8 MiB and 388 MB at 12 MiB, with the same stored rate "
        "(k8s/base/worker.yaml sizes the memory limit from it).",
    )
    worker_max_receives: int = Field(
        5,
        ge=1,
        description="Receives after which SQS dead-letters a message, until the worker has "
        "read the queue's own redrive `maxReceiveCount` (at start), which it then uses.",
    )
    dead_letter_poll_seconds: float = Field(
        60, gt=0, description="How often the dead-letter queue's depth is read for /metrics."
    )
    retention_interval_seconds: float = Field(
        300,
        gt=0,
        description="How often the retention sweep runs, across all worker replicas (one "
        "sweeps at a time, under a lease in Redis).",
    )
    retention_budget_seconds: float = Field(
        60,
        gt=0,
        description="Longest one retention sweep runs; what it leaves waits for the next.",
    )
    rollup_minute_hours: float = Field(
        24,
        gt=0,
        description="Age beyond which event counts are kept per hour instead of per minute "
        "(the rollup compaction turns older minutes into hours).",
    )
    rollup_interval_seconds: float = Field(
        30,
        gt=0,
        description="How often the worker counts the batches of dead workers into the rollups "
        "and compacts them.",
    )
    shutdown_grace_seconds: float = Field(
        25, gt=0, description="How long SIGTERM waits for batches in hand."
    )
