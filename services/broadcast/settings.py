"""Settings of the broadcast service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.limits import LimitSettings


class BroadcastSettings(LimitSettings):
    service_name: str = Field("broadcast", description="Name used in logs and metrics.")
    port: int = Field(8005, description="Port of the broadcast service.")
    stream_heartbeat_seconds: float = Field(
        15.0, gt=0, description="Idle time after which a heartbeat frame is sent."
    )
    stream_buffer_frames: int = Field(
        256, ge=1, description="Frames buffered per connection before it counts as too slow."
    )
    stream_slow_grace_seconds: float = Field(
        10.0,
        gt=0,
        description="How long a send to a client marked slow may stay blocked before the "
        "connection is dropped without its notice frame.",
    )
    stream_replay_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest a `tail=N` replay may read the storage (for what the recent-events "
        "ring cannot supply); beyond it the stream closes with 1013 and a `timeout` error.",
    )
    recent_rebuild_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="Longest the background rebuild of a tenant's recent-events ring may "
        "read the storage (it reads the tenant's latest events, sorted).",
    )
    stream_max_tail: int = Field(1000, ge=0, description="Largest `tail=N` replay allowed.")
    stream_max_connections: int = Field(
        5000,
        ge=0,
        description="Live-tail streams this process serves at once, over all tenants; one "
        "more is closed with 4429 (each tenant is also held to its max_concurrent_tails). "
        "0: no cap.",
    )
    stream_compression: bool = Field(
        False,
        description="Offer permessage-deflate to tail clients. Off by default: the server "
        "compresses every frame once per client, which at 100 clients took 6x the CPU of "
        "sending the frames plain (a tail of 1,000 events/s is ~250 KB/s uncompressed).",
    )
