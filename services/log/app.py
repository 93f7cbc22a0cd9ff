"""The log service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.app import create_service_app
from services.log.settings import LogSettings


def create_app(settings: LogSettings | None = None) -> FastAPI:
    settings = settings or LogSettings()
    return create_service_app(
        name="log",
        settings=settings,
        needs=(
            "mongo",
            "sqs",
        ),
    )
