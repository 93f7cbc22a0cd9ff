"""Settings of the broadcast service (env prefix `LOGSERVER_`)."""

from __future__ import annotations

from pydantic import Field

from services.core.settings import CoreSettings


class BroadcastSettings(CoreSettings):
    service_name: str = Field("broadcast", description="Name used in logs and metrics.")
    port: int = Field(8005, description="Port of the broadcast service.")
