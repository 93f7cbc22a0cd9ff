"""The log service: ingest into the queue, search, stats, export, cleanup."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.app import create_service_app
from services.core.tenantpolicy import TenantPolicies
from services.log.batcher import IngestBatcher, sqs_sender
from services.log.query import LogRepository
from services.log.routes import DIRECT_ROUTES, router
from services.log.settings import LogSettings
from services.log.shippers.routes import es_router, loki_router, otlp_router


def create_app(settings: LogSettings | None = None) -> FastAPI:
    settings = settings or LogSettings()

    async def startup(app: FastAPI) -> None:
        clients = app.state.clients
        app.state.repo = LogRepository(clients.db, settings.query_timeout_seconds)
        # Ingest refuses events older than the tenant's retention; a changed retention
        # reaches the cache at once through the tenant service's invalidations.
        policies = TenantPolicies(clients.db, settings.credential_cache_seconds)
        app.state.invalidations.subscribe(policies.on_change)
        app.state.policies = policies
        batcher = IngestBatcher(
            sqs_sender(clients.sqs.client, clients.sqs.url),
            linger=settings.ingest_linger_ms / 1000,
            max_message_bytes=settings.ingest_max_message_bytes,
            max_batch_bytes=settings.ingest_max_message_bytes,
            max_in_flight=settings.ingest_max_in_flight,
            coalesce_in_flight=settings.ingest_coalesce_in_flight,
        )
        batcher.start()
        app.state.batcher = batcher

    async def shutdown(app: FastAPI) -> None:
        await app.state.batcher.close()

    return create_service_app(
        name="log",
        settings=settings,
        routers=[router, otlp_router, loki_router, es_router],
        needs=("mongo", "sqs"),
        on_startup=startup,
        on_shutdown=shutdown,
        # Ingest needs SQS only (token checks ride out a MongoDB outage on their
        # cached answers); search fails alone with 503 while MongoDB is away,
        # which is better than taking ingest out of the load balancer with it.
        ready_needs=("sqs",),
        direct_routes=DIRECT_ROUTES,
    )
