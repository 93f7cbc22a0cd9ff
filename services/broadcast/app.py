"""The broadcast service: tenant-scoped live tail over WebSocket, fed from Redis."""

from __future__ import annotations

from fastapi import FastAPI

from services.broadcast.hub import Hub
from services.broadcast.routes import router
from services.broadcast.settings import BroadcastSettings
from services.core.app import create_service_app


def create_app(settings: BroadcastSettings | None = None) -> FastAPI:
    settings = settings or BroadcastSettings()

    async def startup(app: FastAPI) -> None:
        hub = Hub(app.state.clients.redis)
        hub.start()
        app.state.hub = hub

    async def shutdown(app: FastAPI) -> None:
        await app.state.hub.close()

    return create_service_app(
        name="broadcast",
        settings=settings,
        routers=[router],
        needs=("mongo", "redis"),
        on_startup=startup,
        on_shutdown=shutdown,
        # The live tail is Redis; MongoDB only serves `tail=N` replays and the
        # (cached) token checks.
        ready_needs=("redis",),
    )
