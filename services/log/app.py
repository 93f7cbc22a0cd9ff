"""The log service: ingest into the queue, search, stats, export, cleanup."""

from __future__ import annotations

from fastapi import FastAPI

from services.core.limitstore import StoreGuard, limits_client
from services.core.slots import SlotLeases
from services.core.tenantpolicy import TenantPolicies
from services.core.web.app import create_service_app
from services.core.web.state import clients, invalidations, service_state, set_service_state
from services.log.admission import IngestAdmission
from services.log.apidoc import document
from services.log.batcher import IngestBatcher, sqs_sender
from services.log.querygate import QueryGate
from services.log.repository import LogRepository
from services.log.routes import DIRECT_ROUTES, router
from services.log.settings import LogSettings
from services.log.shippers.routes import es_router, loki_router, otlp_router
from services.log.state import LogState


def create_app(settings: LogSettings | None = None) -> FastAPI:
    settings = settings or LogSettings()

    async def startup(app: FastAPI) -> None:
        db, redis = clients(app).db, clients(app).redis
        repo = LogRepository(
            db,
            settings.query_timeout_seconds,
            count_limit=settings.query_count_limit,
            rollup_lease_seconds=settings.rollup_lease_seconds,
            redis_client=redis,
        )
        # The tenant's retention (ingest refuses older events) and limits, one cached
        # read of its document; a tenant change announced on the invalidation bus
        # reaches the cache at once.
        policies = TenantPolicies(db, settings.credential_cache_seconds, settings.default_limits)
        invalidations(app).subscribe(policies.on_change)
        guard = StoreGuard("log")
        # Its own client: every request asks it, and must not exhaust the shared pool.
        limits_redis = limits_client(settings.redis_url)
        clients(app).closers.append(limits_redis.aclose)
        admission = IngestAdmission(limits_redis, policies.limits, guard)
        leases = SlotLeases(limits_redis, "queries", guard, reason="max_concurrent_queries")
        leases.start()
        query_gate = QueryGate(
            limits_redis,
            leases,
            guard,
            max_concurrent=settings.query_max_concurrent,
            queue_seconds=settings.query_queue_seconds,
        )
        sqs = clients(app).sqs
        assert sqs is not None, "the log service needs SQS"
        batcher = IngestBatcher(
            sqs_sender(sqs.client, sqs.url),
            linger=settings.ingest_linger_ms / 1000,
            max_message_bytes=settings.ingest_max_message_bytes,
            max_batch_bytes=settings.ingest_max_message_bytes,
            max_in_flight=settings.ingest_max_in_flight,
            coalesce_in_flight=settings.ingest_coalesce_in_flight,
            compression=settings.ingest_queue_compression,
            # Every ingest path goes through submit(): limits are checked there.
            admit=admission.admit,
            refund=admission.refund,
        )
        batcher.start()
        set_service_state(
            app,
            LogState(settings, repo, policies, guard, admission, query_gate, batcher),
        )

    async def shutdown(app: FastAPI) -> None:
        state = service_state(app, LogState)
        await state.batcher.close()
        await state.query_gate.close()

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
        api_models=document(router, otlp_router, loki_router, es_router),
    )
