"""Typed access to what a service keeps on its app.

Starlette's ``app.state`` is an untyped bag: read directly (``request.app.state.repo``)
it hides what a handler uses and types nothing. Every read goes through here instead:

* the parts every service has, set by ``create_service_app`` (clients, settings,
  readiness, the error and invalidation buses, the token checks): one accessor each;
* each service's own objects: one dataclass per service (``LogState``, ...), set once
  at start-up with :func:`set_service_state` and read with :func:`service_state`,
  which services wrap in a FastAPI dependency alias (``Annotated[LogState, Depends(...)]``).

The accessors take the app, so a plain function (the direct ingest routes, a
WebSocket) uses them as a route's dependency does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from services.core.apikeys import ApiKeyAuthenticator
    from services.core.clients import Clients
    from services.core.credentials import CredentialStatus
    from services.core.errorbus import ErrorBus
    from services.core.invalidation import InvalidationBus
    from services.core.settings import CoreSettings
    from services.core.tokens import TokenVerifier
    from services.core.web.background import StartupTasks
    from services.core.web.health import Readiness

S = TypeVar("S")


def clients(app: Starlette) -> Clients:
    return app.state.clients


def settings(app: Starlette) -> CoreSettings:
    return app.state.settings


def readiness(app: Starlette) -> Readiness:
    return app.state.readiness


def startup_tasks(app: Starlette) -> StartupTasks:
    return app.state.startup


def invalidations(app: Starlette) -> InvalidationBus:
    return app.state.invalidations


def error_bus(app: Starlette) -> ErrorBus | None:
    """The error bus, or None before the lifespan opened it (or in a bare test app)."""
    return getattr(app.state, "errors", None)


def verifier(app: Starlette) -> TokenVerifier:
    return app.state.verifier


def credentials(app: Starlette) -> CredentialStatus:
    return app.state.credentials


def apikeys(app: Starlette) -> ApiKeyAuthenticator:
    return app.state.apikeys


def set_service_state(app: Starlette, value: object) -> None:
    """Keep a service's own objects (one dataclass) on its app; see :func:`service_state`."""
    app.state.service = value


def service_state(app: Starlette, kind: type[S]) -> S:
    """The service's own objects, as set at start-up; ``kind`` is the service's dataclass."""
    value = app.state.service
    if not isinstance(value, kind):  # a wiring mistake, not a request's fault
        raise TypeError(f"app.state.service is {type(value).__name__}, not {kind.__name__}")
    return value


def state_dependency(kind: type[S]) -> Callable[[HTTPConnection], Awaitable[S]]:
    """A FastAPI dependency giving the service's dataclass: ``Depends(state_dependency(K))``.

    ``async``: FastAPI runs a plain function dependency in its thread pool."""

    async def dependency(conn: HTTPConnection) -> S:
        return service_state(conn.app, kind)

    dependency.__name__ = f"{kind.__name__.lower()}_dependency"
    return dependency
