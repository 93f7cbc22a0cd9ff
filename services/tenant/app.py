"""The tenant service app."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.app import create_service_app
from services.tenant.settings import TenantSettings


def create_app(settings: TenantSettings | None = None) -> FastAPI:
    settings = settings or TenantSettings()
    return create_service_app(
        name="tenant",
        settings=settings,
        needs=("mongo",),
    )
