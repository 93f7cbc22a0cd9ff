"""The tenant service: tenants and their API keys."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.app import create_service_app
from services.tenant.repository import TenantRepository
from services.tenant.routes import router
from services.tenant.settings import TenantSettings


def create_app(settings: TenantSettings | None = None) -> FastAPI:
    settings = settings or TenantSettings()

    async def startup(app: FastAPI) -> None:
        store = TenantRepository(
            app.state.clients.db,
            app.state.invalidations,
            settings.default_limits,
            redis_client=app.state.clients.redis,
        )
        app.state.store = store
        app.state.startup.add("indexes", store.ensure_indexes)

    return create_service_app(
        name="tenant",
        settings=settings,
        routers=[router],
        needs=("mongo",),
        on_startup=startup,
        # Every route reads or writes MongoDB; its indexes come first.
        ready_needs=("mongodb", "startup"),
    )
