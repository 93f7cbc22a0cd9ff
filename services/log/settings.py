"""Settings of the log service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CoreSettings


class LogSettings(CoreSettings):
    service_name: str = Field("log", description="Name used in logs and metrics.")
    port: int = Field(8003, description="Port of the log service.")
