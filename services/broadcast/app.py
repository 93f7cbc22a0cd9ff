"""The broadcast service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.broadcast.settings import BroadcastSettings
from services.core.app import create_service_app


def create_app(settings: BroadcastSettings | None = None) -> FastAPI:
    settings = settings or BroadcastSettings()
    return create_service_app(
        name="broadcast",
        settings=settings,
        needs=(
            "mongo",
            "redis",
        ),
    )
