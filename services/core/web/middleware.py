"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and slows streaming)."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core.errors import http_status_problem
from services.core.jsonlog import request_id_var
from services.core.metrics import HTTP_LATENCY, HTTP_REQUESTS, UNHANDLED_ERRORS
from services.core.settings import AccessLog
from services.core.web.responses import ProblemResponse
from services.core.web.state import error_bus

log = logging.getLogger("logserver.http")
errors_log = logging.getLogger(__name__)
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def internal_error_problem(request_id: str) -> dict[str, Any]:
    """The problem+json body of a 500: nothing of the exception, the id to report."""
    body = http_status_problem(
        500, "An unexpected error occurred; it was logged. Retry, or report the request id."
    )
    body["request_id"] = request_id
    return body


async def report_unhandled(service: str, scope: Scope, exc: Exception) -> None:
    """Count, log (with the traceback) and publish an exception that became a 500."""
    UNHANDLED_ERRORS.labels(service).inc()
    path, method = scope.get("path", ""), scope.get("method", "")
    errors_log.error("unhandled error", exc_info=exc, extra={"path": path, "method": method})
    app = scope.get("app")
    bus = error_bus(app) if isinstance(app, Starlette) else None
    if bus is not None:
        await bus.publish(
            "unhandled_exception", f"{type(exc).__name__}: {exc}"[:500], path=path, method=method
        )


class RequestContextMiddleware:
    """Request id (from ``X-Request-ID`` or new), metrics and the access log.

    Adds ``X-Served-By: <service>`` so an operator (and the gateway tests) can see
    which service answered behind the gateway. ``access_log`` picks which requests
    get a log line: ``all``, ``errors`` (status >= 400 or slower than ``slow_ms``)
    or ``off``; formatting and shipping a line per request costs more CPU than the
    single-event ingest itself, so the default logs only what needs a look.

    An exception no handler took is answered here with a problem+json 500 and
    does not go further: Starlette's ServerErrorMiddleware (outside this one)
    would re-raise it after sending the response, and uvicorn then closes the
    connection - after nginx had put it back in its keep-alive pool, so the next
    request on it, another caller's POST that nginx does not retry, got a 502.
    """

    def __init__(
        self,
        app: ASGIApp,
        service: str,
        access_log: AccessLog = "all",
        slow_ms: float = 1000.0,
    ) -> None:
        self.app = app
        self.service = service
        self.served_by = (b"x-served-by", service.encode())
        self.access_log = access_log
        self.slow_seconds = slow_ms / 1000
        # Bounded: methods x route templates (or "unmatched") x statuses.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def _counter(self, method: str, template: str, status: int) -> Any:
        # The labelled child, kept: labels() per request was 2 % of a small request.
        key = (method, template, status)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = HTTP_REQUESTS.labels(
                self.service, method, template, str(status)
            )
        return child

    def _histogram(self, method: str, template: str) -> Any:
        key = (method, template)
        child = self._histograms.get(key)
        if child is None:
            child = self._histograms[key] = HTTP_LATENCY.labels(self.service, method, template)
        return child

    def _wants_line(self, status: int, elapsed: float) -> bool:
        if self.access_log == "all":
            return True
        if self.access_log == "off":
            return False
        return status >= 400 or elapsed >= self.slow_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                rid = value.decode("latin-1")[:128]
                break
        # 128 random bits from ``random``, not uuid4's os.urandom: an id to correlate
        # by, not a secret (a client may send any id it likes).
        rid = rid or f"{random.getrandbits(128):032x}"
        token = request_id_var.set(rid)
        # Exception handlers for 500s run outside this middleware's send path; they
        # read the id from the scope to put it on the response themselves.
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", rid.encode()),
                    self.served_by,
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if scope["type"] != "http":
                raise  # the WebSocket server closes with 1011 (or 500 before accept)
            await report_unhandled(self.service, scope, exc)
            if not started:
                response = ProblemResponse(internal_error_problem(rid), status_code=500)
                await response(scope, receive, send_wrapper)
            # Else nothing more can be sent. Not re-raising still matters: a response
            # that was complete (the error came from a background task) leaves the
            # connection reusable; one left unfinished (a stream that broke) makes
            # the server close this one connection, so the client sees it truncated.
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - start
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                method = scope["method"]
                self._counter(method, template, status).inc()
                self._histogram(method, template).observe(elapsed)
                if (
                    self._wants_line(status, elapsed)
                    and scope["path"] not in _QUIET_PATHS
                    and log.isEnabledFor(logging.INFO)
                ):
                    log.info(
                        "request",
                        extra={
                            "method": method,
                            "path": scope["path"],
                            "status": status,
                            "ms": round(elapsed * 1000, 2),
                        },
                    )
            request_id_var.reset(token)
