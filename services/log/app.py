"""The log service: ingest into the queue, search, stats, export, cleanup."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.app import create_service_app
from services.core.limitstore import StoreGuard, limits_client
from services.core.slots import SlotLeases
from services.core.tenantpolicy import TenantPolicies
from services.log.admission import IngestAdmission
from services.log.batcher import IngestBatcher, sqs_sender
from services.log.querygate import QueryGate
from services.log.repository import LogRepository
from services.log.routes import DIRECT_ROUTES, router
from services.log.settings import LogSettings
from services.log.shippers.routes import es_router, loki_router, otlp_router


def create_app(settings: LogSettings | None = None) -> FastAPI:
    settings = settings or LogSettings()

    async def startup(app: FastAPI) -> None:
        clients = app.state.clients
        app.state.repo = LogRepository(
            clients.db,
            settings.query_timeout_seconds,
            count_limit=settings.query_count_limit,
            rollup_lease_seconds=settings.rollup_lease_seconds,
            redis_client=clients.redis,
        )
        # The tenant's retention (ingest refuses older events) and limits, one cached
        # read of its document; a tenant change announced on the invalidation bus
        # reaches the cache at once.
        policies = TenantPolicies(
            clients.db, settings.credential_cache_seconds, settings.default_limits
        )
        app.state.invalidations.subscribe(policies.on_change)
        app.state.policies = policies
        guard = StoreGuard("log")
        app.state.limit_guard = guard
        # Its own client: every request asks it, and must not exhaust the shared pool.
        limits_redis = limits_client(settings.redis_url)
        clients.closers.append(limits_redis.aclose)
        admission = IngestAdmission(limits_redis, policies.limits, guard)
        app.state.admission = admission
        leases = SlotLeases(limits_redis, "queries", guard, reason="max_concurrent_queries")
        leases.start()
        app.state.query_gate = QueryGate(
            limits_redis,
            leases,
            guard,
            max_concurrent=settings.query_max_concurrent,
            queue_seconds=settings.query_queue_seconds,
        )
        batcher = IngestBatcher(
            sqs_sender(clients.sqs.client, clients.sqs.url),
            linger=settings.ingest_linger_ms / 1000,
            max_message_bytes=settings.ingest_max_message_bytes,
            max_batch_bytes=settings.ingest_max_message_bytes,
            max_in_flight=settings.ingest_max_in_flight,
            coalesce_in_flight=settings.ingest_coalesce_in_flight,
            # Every ingest path goes through submit(): limits are checked there.
            admit=admission.admit,
            refund=admission.refund,
        )
        batcher.start()
        app.state.batcher = batcher

    async def shutdown(app: FastAPI) -> None:
        await app.state.batcher.close()
        await app.state.query_gate.close()

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
