"""The worker service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.app import create_service_app
from services.worker.settings import WorkerSettings


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    return create_service_app(
        name="worker",
        settings=settings,
        needs=("mongo", "sqs", "redis"),
        authenticates=False,
    )
