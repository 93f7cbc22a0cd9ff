"""The app factory every service uses: lifespan, clients, errors, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from services.core.apikeys import ApiKeyAuthenticator
from services.core.clients import Clients
from services.core.credentials import CredentialStatus
from services.core.errorbus import ErrorBus
from services.core.errors import (
    LogServerError,
    Unavailable,
    http_status_problem,
    validation_errors,
)
from services.core.invalidation import InvalidationBus
from services.core.jsonlog import configure_logging
from services.core.metrics import watch_loop_lag
from services.core.settings import CoreSettings
from services.core.tokens import JwksSource, TokenVerifier
from services.core.web import openapi
from services.core.web.background import StartupTasks
from services.core.web.direct import DirectEndpoint, DirectRoutes, FrontDoor
from services.core.web.health import Readiness
from services.core.web.middleware import (
    RequestContextMiddleware,
    internal_error_problem,
    report_unhandled,
)
from services.core.web.openapi import problem_response
from services.core.web.responses import JSONResponse, ProblemResponse
from services.core.web.security import http_jwks_source
from services.core.web.state import error_bus, invalidations, readiness

log = logging.getLogger(__name__)

Hook = Callable[[FastAPI], Awaitable[None]]
JwksSourceFactory = Callable[[FastAPI], JwksSource]


async def _install_verifier(
    app: FastAPI, settings: CoreSettings, clients: Clients, source: JwksSourceFactory | None
) -> None:
    if source is None:
        http = httpx.AsyncClient()
        clients.closers.append(http.aclose)
        jwks = http_jwks_source(http, settings.auth_url)
    else:
        jwks = source(app)
    app.state.verifier = TokenVerifier(
        jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=settings.jwt_leeway_seconds,
    )
    assert clients.db is not None, "token checks need MongoDB (api_keys, tenants)"
    credentials = CredentialStatus(clients.db, settings.credential_cache_seconds)
    # Revocations and tenant changes reach this process's cache at once; the cache
    # lifetime only bounds the changes whose announcement Redis could not deliver.
    bus = invalidations(app)
    bus.subscribe(credentials.invalidate)
    app.state.credentials = credentials
    # API keys sent directly (Basic/ApiKey, log shippers): the same invalidations apply.
    apikeys = ApiKeyAuthenticator(clients.db, settings.credential_cache_seconds)
    bus.subscribe(apikeys.invalidate)
    app.state.apikeys = apikeys


def add_default_probes(readiness: Readiness, clients: Clients, needs: frozenset[str]) -> None:
    if clients.db is not None:
        db = clients.db
        readiness.add("mongodb", lambda: db.command("ping"))
    if clients.sqs is not None:
        sqs = clients.sqs
        readiness.add("sqs", lambda: _sqs_probe(sqs))
    if "redis" in needs and clients.redis is not None:
        r = clients.redis
        readiness.add("redis", lambda: r.ping())


async def _sqs_probe(sqs: Any) -> None:
    url = await sqs.url()
    await sqs.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])


async def _watch_dependencies(readiness: Readiness, every: float = 10.0) -> None:
    """Check dependencies even when nobody calls /readyz, so a lost backend is
    logged and published on `logserver:errors` within seconds in any environment."""
    while True:
        await asyncio.sleep(every)
        try:
            await readiness.check()
        except Exception:
            log.exception("dependency watchdog failed")


def install_error_handlers(app: FastAPI) -> None:
    async def on_logserver_error(request: Request, exc: LogServerError) -> Response:
        return ProblemResponse(
            exc.to_problem(request.url.path), status_code=exc.status, headers=exc.headers
        )

    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = validation_errors(list(exc.errors()))
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        body = http_status_problem(422, f"{first['field']}: {first['message']}")
        body["type"] = "https://logserver.dev/problems/validation"
        body["title"] = "Unprocessable Content"
        body["errors"] = errors
        body["instance"] = request.url.path
        return ProblemResponse(body, status_code=422)

    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        body = http_status_problem(exc.status_code, detail)
        body["instance"] = request.url.path
        return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_unhandled(request: Request, exc: Exception) -> Response:
        # Starlette's ServerErrorMiddleware calls this and then re-raises, which makes
        # the server close the connection. RequestContextMiddleware answers every
        # exception raised inside it without re-raising; this is the fallback for
        # one raised outside it (in an outer middleware) or in an app without it.
        await report_unhandled(app.title, request.scope, exc)
        rid = request.scope.get("state", {}).get("request_id", "")
        return ProblemResponse(
            internal_error_problem(rid),
            status_code=500,
            headers={"X-Request-ID": rid, "X-Served-By": app.title},
        )

    async def on_backend_lost(request: Request, exc: Exception) -> Response:
        bus = error_bus(request.app)
        if bus is not None:
            await bus.publish(
                "backend_error", f"{type(exc).__name__}: {exc}"[:500], path=request.url.path
            )
        problem = Unavailable("The database is not answering right now; retry shortly.")
        return await on_logserver_error(request, problem)

    async def on_client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody will read this answer; 499 (nginx's "client closed request") keeps
        # it out of the 5xx error rate and the error bus, which are for our faults.
        return Response(status_code=499)

    app.add_exception_handler(LogServerError, on_logserver_error)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnect, on_client_gone)  # type: ignore[arg-type]
    # A lost MongoDB is an outage to retry, not a bug: 503 with Retry-After, not 500.
    app.add_exception_handler(ConnectionFailure, on_backend_lost)
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unhandled)


def ops_router(*, documented: bool = False) -> APIRouter:
    """``/healthz``, ``/readyz``, ``/metrics`` on the service's own port; ``documented``
    puts them in its OpenAPI (the worker's: it has no other routes)."""
    router = APIRouter(include_in_schema=documented, tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": request.app.title})

    @router.get(
        "/readyz",
        summary="Readiness: the backends it needs answer",
        responses={503: problem_response(503, "A required backend is not answering.")},
    )
    async def readyz(request: Request) -> Response:
        """503 only when a *required* check fails; every check is in the body either way."""
        checks = readiness(request.app)
        report = await checks.check()
        blocking = checks.blocking(report)
        required = sorted(n for n in report if checks.decides(n))
        degraded = [n for n, state in report.items() if state != "ok" and n not in blocking]
        if blocking:
            body = http_status_problem(
                503, "Not ready: " + ", ".join(f"{n} ({report[n]})" for n in blocking)
            )
            body.update(checks=report, required=required, degraded=degraded)
            return ProblemResponse(body, status_code=503, headers={"Retry-After": "5"})
        status = "degraded" if degraded else "ready"
        return JSONResponse(
            {"status": status, "checks": report, "required": required, "degraded": degraded}
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_service_app(
    *,
    name: str,
    settings: CoreSettings,
    routers: Iterable[APIRouter] = (),
    needs: Iterable[str] = (),
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    authenticates: bool = True,
    jwks_source: JwksSourceFactory | None = None,
    ready_needs: Iterable[str] | None = None,
    direct_routes: Mapping[tuple[str, str], DirectEndpoint] | None = None,
    api_models: Iterable[type[BaseModel]] = (),
    api_paths: Mapping[str, dict[str, Any]] | None = None,
    document_ops: bool = False,
) -> FastAPI:
    """Build a service app.

    ``needs`` names the backends this service depends on (``mongo``, ``sqs``,
    ``redis``); they are opened once in the lifespan, probed by ``/readyz`` and
    closed on shutdown. ``ready_needs`` names the checks (``mongodb``, ``sqs``,
    ``redis``, ``startup`` or one the service adds) that decide readiness: what
    the service needs to serve its own traffic. The others are reported, not
    decisive; ``None`` makes every check decide. ``on_startup``/``on_shutdown``
    run after the clients open and before they close. ``authenticates`` installs
    the token verifier (JWKS from the auth service unless ``jwks_source`` gives
    another source) and the credential cache. ``invalidations(app)`` (an
    :class:`InvalidationBus`; services/core/web/state.py has the typed accessors) exists
    before ``on_startup``: a hook may subscribe callbacks to tenant and API-key
    changes; it listens once anything subscribed. A service keeps its own objects in
    one dataclass, ``set_service_state(app, ...)`` in ``on_startup``.
    ``direct_routes`` maps a few hot ``(method, path)`` pairs to endpoints served
    without FastAPI's routing and dependency solving (services/core/web/direct.py);
    they must also be declared on a router. ``api_models`` and ``api_paths`` go
    into its OpenAPI document (services/core/web/openapi.py) besides what the routes
    declare; ``document_ops`` documents the health and metrics routes too.
    """
    need_set = frozenset(needs)
    ready_set = None if ready_needs is None else frozenset(ready_needs)
    configure_logging(name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Set here, read through services/core/web/state.py's typed accessors.
        clients = await Clients.open(settings, need_set)
        app.state.clients = clients
        app.state.settings = settings
        errors = app.state.errors = ErrorBus(name, clients.redis)
        checks = app.state.readiness = Readiness(
            errors, settings.dependency_timeout_seconds, service=name
        )
        checks.require(ready_set)
        add_default_probes(checks, clients, need_set)
        startup = app.state.startup = StartupTasks()
        checks.add("startup", startup.probe)
        # Tenant and API-key changes, announced by the tenant service; any start-up hook
        # may subscribe a cache to them (the token verifier's credential cache does).
        bus = app.state.invalidations = InvalidationBus(clients.redis)
        watchdog = asyncio.create_task(_watch_dependencies(checks))
        lag_watch = asyncio.create_task(watch_loop_lag(name))
        try:
            if on_startup:
                await on_startup(app)
            if authenticates:
                await _install_verifier(app, settings, clients, jwks_source)
            if bus.has_subscribers:
                bus.start()
            log.info("started", extra={"port": settings.port})
            yield
        finally:
            watchdog.cancel()
            lag_watch.cancel()
            await startup.cancel()
            await bus.close()
            if on_shutdown:
                await on_shutdown(app)
            await clients.close()
            log.info("stopped")

    app = FastAPI(
        title=name,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        # No Swagger UI per service: FastAPI's loads its files from a CDN. The reference
        # is the gateway's /api/docs (services/cli/apidocs.py), built from these documents.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        # FastAPI's OpenTelemetry bridge asks the OTel API for its providers on every
        # request (≈ 5 % of an ingest request's CPU); metrics go to Prometheus instead.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    context = {
        "service": name,
        "access_log": settings.access_log,
        "slow_ms": settings.access_log_slow_ms,
    }
    if direct_routes:
        # Added first, so it runs inside RequestContextMiddleware (ids, metrics, 500s).
        app.add_middleware(DirectRoutes, routes=direct_routes)
        # What run() serves: the same chain, ahead of FastAPI's own middleware.
        chain = RequestContextMiddleware(DirectRoutes(app, direct_routes), **context)
        app.state.front_door = FrontDoor(app, chain, direct_routes)
    app.add_middleware(RequestContextMiddleware, **context)
    install_error_handlers(app)
    app.include_router(ops_router(documented=document_ops))
    for router in routers:
        app.include_router(router)
    openapi.install(app, models=api_models, paths=api_paths)
    return app


# Python's default gen-0 threshold (700 allocations) ran a collection every
# ~5 requests under load, each walking the objects of every request in flight:
# 49 % of the log service's CPU at 1,000 concurrent clients went to the cyclic
# GC. At 10,000 the share was ~15 % and throughput rose 1,384 -> 1,881 req/s.
GC_THRESHOLDS = (10_000, 50, 100)
KEEP_ALIVE_SECONDS = 75  # idle keep-alive of the services; proxies must give up earlier


def tune_gc() -> None:
    """Freeze what start-up allocated (imports, models: never garbage) out of
    the collector's sight, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(app_factory: Callable[[], FastAPI], settings: CoreSettings, **server: Any) -> None:
    """Entry point of `python -m services.<name>`; ``server`` adds uvicorn options."""
    import uvicorn

    app = app_factory()
    tune_gc()
    uvicorn.run(
        getattr(app.state, "front_door", app),  # (services/core/web/direct.py)
        host=settings.host,
        port=settings.port,
        # The stock asyncio loop, not uvloop: under a thousand concurrent clients
        # uvloop served new requests ahead of finishing accepted ones (a p99 of
        # 11 s against asyncio's 1.4 s at the same throughput; uvloop#123), and it
        # has an open report of responses reaching the wrong request under heavy
        # load (uvloop#645) - not a risk a multi-tenant server may take.
        loop="asyncio",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        # Longer than any proxy in front keeps an idle upstream connection (nginx and
        # ingress-nginx 60 s, ALB 60 s): with uvicorn's 5 s, the proxy reused a
        # connection the service had just closed and answered a POST with 502.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        ws_ping_interval=None,
        **server,
    )
