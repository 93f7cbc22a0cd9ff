"""Settings of the log service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.limits import LimitSettings
from services.core.logs.envelope import Compression


class LogSettings(LimitSettings):
    service_name: str = Field("log", description="Name used in logs and metrics.")
    port: int = Field(8003, description="Port of the log service.")
    query_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest a search, count or stats query may run in the storage before "
        "it is stopped and answered with 504 (exports are not bounded).",
    )
    query_count_limit: int = Field(
        10_000,
        ge=1,
        description="`total=true` on a filter the rollups cannot answer counts at most this "
        "many events and answers `total_relation: gte` beyond (tenant, time, level and "
        "service filters are counted exactly from the rollups).",
    )
    ingest_linger_ms: float = Field(
        4.0, ge=0, le=100, description="How long the batcher waits for concurrent requests."
    )
    ingest_max_message_bytes: int = Field(
        240_000,
        ge=4096,
        le=262_144,
        description="Upper bound of one queue message body as sent (compressed), and of the "
        "bodies of one SendMessageBatch.",
    )
    ingest_queue_compression: Compression = Field(
        "zstd",
        description="How queue message bodies are compressed: `zstd` (message version 3; "
        "version 2 below 16 KiB, where zlib costs less) or `zlib` (version 2 always: ~2x the "
        "CPU, ~1.4x the bytes of larger bodies). A worker older than version 3 "
        "cannot read it and dead-letters it: while upgrading a running system, set `zlib` until "
        "every worker is upgraded. Bodies that do not compress are sent plain (version 1).",
    )
    ingest_max_in_flight: int = Field(
        16,
        ge=1,
        le=256,
        description="SendMessageBatch calls in flight at once for requests too large for "
        "one message (bulk).",
    )
    ingest_coalesce_in_flight: int = Field(
        1,
        ge=1,
        le=64,
        description="Coalesced SendMessageBatch calls in flight at once; requests arriving "
        "meanwhile join the next call, so batches grow with load instead of calls.",
    )
    query_max_concurrent: int = Field(
        16,
        ge=0,
        description="Searches, stats and exports this process runs at once, over all "
        "tenants; more wait their turn (LOGSERVER_QUERY_QUEUE_SECONDS), so the storage is "
        "never flooded. Each tenant is also held to its max_concurrent_queries. 0: no cap.",
    )
    query_queue_seconds: float = Field(
        10.0,
        ge=0,
        description="How long a query waits for one of LOGSERVER_QUERY_MAX_CONCURRENT before "
        "it is answered 503 (server-busy).",
    )
