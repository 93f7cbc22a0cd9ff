"""Hot routes served without FastAPI's per-request machinery, with the same guarantees.

FastAPI spends more CPU routing a request, solving its dependencies and
wrapping it in exception and exit-stack middleware than a single-event ingest
spends on its own work (py-spy on the log service under load: the handler was
14 % of the process, the framework around it ~60 %). A :class:`DirectRoutes`
middleware sits just inside :class:`~services.core.web.middleware.RequestContextMiddleware`
(request id, metrics, access log, 500s) and answers the few ``(method, path)``
pairs it is given by calling their endpoint directly: the endpoint does its own
authorization (the same ``require(...)`` function the ``Depends`` uses), and an
exception goes to the app's own exception handlers, so errors are the same
problem+json as on every other route. Every other request goes on to FastAPI.
The routes stay declared on the FastAPI router too (OpenAPI, and any path this
table does not name).

:class:`FrontDoor` is what the server runs: it hands these routes' requests to a
``RequestContextMiddleware(DirectRoutes)`` chain of their own, so they skip also the
middleware FastAPI wraps every request in (its error, telemetry and body-limit
layers: ~5 % of a single-event ingest's CPU, none of which these routes use:
RequestContextMiddleware answers any exception with the same 500 problem, telemetry
is off, and ingest bounds its body itself). Everything else goes to the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

DirectEndpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


def find_handler(handlers: Mapping[Any, Handler], exc: Exception) -> Handler | None:
    """The app's handler for ``exc`` (most specific class first), as Starlette picks it.

    ``Exception`` itself is left out: an exception no specific handler takes goes
    up to RequestContextMiddleware, which answers it with the 500 every route gets.
    """
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = handlers.get(cls)
        if handler is not None:
            return handler
    return None


@dataclass(frozen=True, slots=True)
class _Declared:
    path: str


class DirectRoutes:
    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], DirectEndpoint]) -> None:
        self.app = app
        self.routes = dict(routes)
        # What routing would put in the scope; RequestContextMiddleware labels the
        # metrics with its ``path`` (the template: these paths have no parameters).
        self._scope_routes = {key: _Declared(key[1]) for key in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = (scope["method"], scope["path"])
            endpoint = self.routes.get(key)
            if endpoint is not None:
                await self._serve(key, endpoint, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        key: tuple[str, str],
        endpoint: DirectEndpoint,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        app = scope.get("app")
        scope["route"] = self._scope_routes[key]
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = find_handler(getattr(app, "exception_handlers", {}), exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


class FrontDoor:
    """The ASGI app the server calls: ``direct`` serves the ``(method, path)`` pairs in
    ``keys`` (with ``scope["app"]`` set to ``app``, whose state and exception handlers
    they use), ``app`` everything else, lifespan included."""

    def __init__(self, app: ASGIApp, direct: ASGIApp, keys: Iterable[tuple[str, str]]) -> None:
        self.app = app
        self.direct = direct
        self.keys = frozenset(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in self.keys:
            scope["app"] = self.app
            await self.direct(scope, receive, send)
            return
        await self.app(scope, receive, send)
