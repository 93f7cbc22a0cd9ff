"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and slows streaming)."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core.jsonlog import request_id_var
from services.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.core.settings import AccessLog

log = logging.getLogger("logserver.http")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContextMiddleware:
    """Request id (from ``X-Request-ID`` or new), metrics and the access log.

    Adds ``X-Served-By: <service>`` so an operator (and the gateway tests) can see
    which service answered behind the gateway. ``access_log`` picks which requests
    get a log line: ``all``, ``errors`` (status >= 400 or slower than ``slow_ms``)
    or ``off``; formatting and shipping a line per request costs more CPU than the
    single-event ingest itself, so the default logs only what needs a look.
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
        rid = rid or uuid.uuid4().hex
        token = request_id_var.set(rid)
        # Exception handlers for 500s run outside this middleware's send path; they
        # read the id from the scope to put it on the response themselves.
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", rid.encode()),
                    self.served_by,
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - start
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                method = scope["method"]
                HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
                HTTP_LATENCY.labels(self.service, method, template).observe(elapsed)
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
