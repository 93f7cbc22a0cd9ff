"""The broadcast service: tenant-scoped live tail over WebSocket, fed from Redis."""

from __future__ import annotations

from fastapi import FastAPI

from services.broadcast.apidoc import PATHS
from services.broadcast.hub import Hub
from services.broadcast.routes import router
from services.broadcast.settings import BroadcastSettings
from services.core.app import create_service_app
from services.core.limitstore import StoreGuard
from services.core.ring import Rebuilds
from services.core.slots import SlotLeases
from services.core.tenantpolicy import TenantPolicies


def create_app(settings: BroadcastSettings | None = None) -> FastAPI:
    settings = settings or BroadcastSettings()

    async def startup(app: FastAPI) -> None:
        clients = app.state.clients
        hub = Hub(clients.redis)
        hub.start()
        app.state.hub = hub
        app.state.ring_rebuilds = Rebuilds(
            clients.redis,
            clients.db,
            settings.recent_events,
            int(settings.recent_rebuild_timeout_seconds * 1000),
        )
        # The tenant's limits (max_concurrent_tails), one cached read of its document;
        # a tenant change announced on the invalidation bus applies at once.
        policies = TenantPolicies(
            clients.db, settings.credential_cache_seconds, settings.default_limits
        )
        app.state.invalidations.subscribe(policies.on_change)
        app.state.policies = policies
        app.state.limit_guard = StoreGuard("broadcast")
        leases = SlotLeases(
            clients.redis, "tails", app.state.limit_guard, reason="max_concurrent_tails"
        )
        leases.start()
        app.state.tail_leases = leases
        app.state.open_streams = 0  # this process's, against stream_max_connections

    async def shutdown(app: FastAPI) -> None:
        await app.state.ring_rebuilds.close()
        await app.state.hub.close()
        await app.state.tail_leases.close()

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
        api_paths=PATHS,
    )
