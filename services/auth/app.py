"""The auth service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.auth.settings import AuthSettings
from services.core.app import create_service_app


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    return create_service_app(
        name="auth",
        settings=settings,
        needs=("mongo",),
    )
