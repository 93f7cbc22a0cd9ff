"""Settings of the worker service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CoreSettings


class WorkerSettings(CoreSettings):
    service_name: str = Field("worker", description="Name used in logs and metrics.")
    port: int = Field(8004, description="Port of the worker service.")
