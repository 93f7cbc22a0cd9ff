"""The tenant service: tenants and their API keys."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.web.app import create_service_app
from services.core.web.state import clients, invalidations, set_service_state, startup_tasks
from services.tenant.repository import TenantRepository
from services.tenant.routes import router
from services.tenant.settings import TenantSettings
from services.tenant.state import TenantState


def create_app(settings: TenantSettings | None = None) -> FastAPI:
    settings = settings or TenantSettings()

    async def startup(app: FastAPI) -> None:
        store = TenantRepository(
            clients(app).db,
            invalidations(app),
            settings.default_limits,
            redis_client=clients(app).redis,
        )
        set_service_state(app, TenantState(store))
        startup_tasks(app).add("indexes", store.ensure_indexes)

    return create_service_app(
        name="tenant",
        settings=settings,
        routers=[router],
        needs=("mongo",),
        on_startup=startup,
        # Every route reads or writes MongoDB; its indexes come first.
        ready_needs=("mongodb", "startup"),
    )
