"""Settings of the auth service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CoreSettings


class AuthSettings(CoreSettings):
    service_name: str = Field("auth", description="Name used in logs and metrics.")
    port: int = Field(8001, description="Port of the auth service.")
