"""Settings of the tenant service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.limits import LimitSettings


class TenantSettings(LimitSettings):
    service_name: str = Field("tenant", description="Name used in logs and metrics.")
    port: int = Field(8002, description="Port of the tenant service.")
