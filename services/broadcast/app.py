"""The broadcast service: tenant-scoped live tail over WebSocket, fed from Redis."""

from __future__ import annotations

from fastapi import FastAPI

from services.broadcast.apidoc import PATHS
from services.broadcast.hub import Hub
from services.broadcast.routes import router
from services.broadcast.settings import BroadcastSettings
from services.broadcast.state import BroadcastState
from services.core.limitstore import StoreGuard
from services.core.logs.ring import Rebuilds
from services.core.slots import SlotLeases
from services.core.tenantpolicy import TenantPolicies
from services.core.web.app import create_service_app
from services.core.web.state import clients, invalidations, service_state, set_service_state


def create_app(settings: BroadcastSettings | None = None) -> FastAPI:
    settings = settings or BroadcastSettings()

    async def startup(app: FastAPI) -> None:
        shared = clients(app)
        hub = Hub(shared.redis)
        hub.start()
        rebuilds = Rebuilds(
            shared.redis,
            shared.db,
            settings.recent_events,
            int(settings.recent_rebuild_timeout_seconds * 1000),
        )
        # The tenant's limits (max_concurrent_tails), one cached read of its document;
        # a tenant change announced on the invalidation bus applies at once.
        policies = TenantPolicies(
            shared.db, settings.credential_cache_seconds, settings.default_limits
        )
        invalidations(app).subscribe(policies.on_change)
        guard = StoreGuard("broadcast")
        leases = SlotLeases(shared.redis, "tails", guard, reason="max_concurrent_tails")
        leases.start()
        set_service_state(
            app, BroadcastState(settings, shared, hub, rebuilds, policies, guard, leases)
        )

    async def shutdown(app: FastAPI) -> None:
        state = service_state(app, BroadcastState)
        await state.ring_rebuilds.close()
        await state.hub.close()
        await state.tail_leases.close()

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
