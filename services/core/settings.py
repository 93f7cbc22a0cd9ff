"""Settings shared by every service; each service subclasses :class:`CoreSettings`.

Every field reads from an environment variable with the ``LOGSERVER_`` prefix
(``mongodb_url`` -> ``LOGSERVER_MONGODB_URL``). Defaults match ``make dev``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

AccessLog = Literal["all", "errors", "off"]


class CoreSettings(BaseSettings):
    """Settings every service understands."""

    model_config = SettingsConfigDict(env_prefix="LOGSERVER_", extra="ignore")

    service_name: str = Field("logserver", description="Name used in logs and metrics.")
    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, description="Port the HTTP server listens on.")
    log_level: str = Field("INFO", description="Python log level of the JSON logs.")
    access_log: AccessLog = Field(
        "errors",
        description="One log line per request: `all`, `errors` (4xx/5xx and slow requests "
        "only; ingest at thousands of requests/s would otherwise log more than it stores) "
        "or `off`. Counts and latencies of every request are in /metrics either way.",
    )
    access_log_slow_ms: float = Field(
        1000.0, ge=0, description="With `access_log=errors`, also log requests slower than this."
    )

    mongodb_url: str = Field(
        "mongodb://127.0.0.1:27017", description="MongoDB (or FerretDB) connection string."
    )
    mongodb_database: str = Field("logserver", description="Database holding all collections.")

    sqs_endpoint_url: str | None = Field(
        "http://127.0.0.1:9324",
        description="SQS endpoint (ElasticMQ locally). Empty means real AWS SQS.",
    )
    sqs_region: str = Field("us-east-1", description="AWS region of the queue.")
    sqs_queue_name: str = Field("logserver-events", description="Queue between ingest and worker.")
    sqs_dlq_name: str = Field("logserver-events-dlq", description="Dead-letter queue name.")
    sqs_access_key_id: str | None = Field(
        None, description="Static SQS key id; unset uses the AWS default chain (IRSA)."
    )
    sqs_secret_access_key: str | None = Field(None, description="Static SQS secret key.")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis: live fan-out, credential-change announcements, the error channel.",
    )

    auth_url: str = Field(
        "http://127.0.0.1:8001", description="Base URL of the auth service (JWKS source)."
    )
    jwt_issuer: str = Field("logserver-auth", description="`iss` claim issued and required.")
    jwt_audience: str = Field("logserver", description="`aud` claim issued and required.")
    jwt_leeway_seconds: int = Field(10, description="Clock skew tolerated on exp/nbf/iat.")
    credential_cache_seconds: int = Field(
        30,
        description="How long a verified key/tenant status is trusted before MongoDB is asked "
        "again. Changes made through the tenant API apply at once (announced on Redis); this "
        "only bounds how late one is noticed if its announcement was lost (Redis down). Open "
        "live-tail streams are re-checked this often too.",
    )

    rollup_lease_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a worker batch's rollup marker (renewed while the batch is in "
        "hand) is trusted: an older one is a worker that died between storing and counting; "
        "its minutes are counted from the events until the worker's recovery counted them.",
    )
    recent_events: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Events per tenant kept in Redis for `tail=N` replays (the recent-events "
        "ring); 0 turns the ring off (replays read the storage).",
    )

    shutdown_timeout_seconds: float = Field(
        20,
        gt=0,
        description="How long SIGTERM waits for requests in flight before closing them "
        "(uvicorn's graceful shutdown). Kubernetes' grace period and the load balancer's "
        "deregistration delay are sized from it; the log service's Deployment sets 300 "
        "so that a running export is not cut by a rollout.",
    )
    dependency_timeout_seconds: float = Field(
        2.0, description="Timeout of each dependency probe in /readyz."
    )

    @property
    def sqs_endpoint(self) -> str | None:
        """The endpoint to give botocore: ``None`` (real AWS) when the setting is empty."""
        return self.sqs_endpoint_url or None
