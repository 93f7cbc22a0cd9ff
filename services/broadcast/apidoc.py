"""The live-tail WebSocket in the OpenAPI document.

OpenAPI has no WebSockets, and FastAPI leaves WebSocket routes out: the stream
is described as the ``GET`` that upgrades it, with its query parameters, the
subprotocol that carries a browser's token, the frames and the close codes
(services/broadcast/stream.py).
"""

from __future__ import annotations

from typing import Any

from services.broadcast.stream import (
    CLOSE_FORBIDDEN,
    CLOSE_INVALID,
    CLOSE_NOT_FOUND,
    CLOSE_SLOW,
    CLOSE_TOO_MANY,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
)
from services.core.logs.filters import FILTER_PARAMS
from services.core.web.openapi import problem_response

CLOSE_CODES: dict[int, str] = {
    CLOSE_UNAUTHORIZED: "missing or invalid token; on an open stream: the token expired, "
    "its API key was revoked or its tenant disabled",
    CLOSE_FORBIDDEN: "role (writer) or tenant not allowed",
    CLOSE_NOT_FOUND: "unknown or disabled tenant",
    CLOSE_INVALID: "bad filter or `tail`, or a platform admin without a tenant",
    CLOSE_SLOW: "slow consumer (buffer overflow); reconnect with `tail=N` to catch up",
    CLOSE_TOO_MANY: "too many streams (the tenant's `max_concurrent_tails` or this "
    "server's limit); the error frame has `retry_after`",
    CLOSE_TRY_AGAIN: "a backend (Redis) is unavailable, or the replay timed out; retry",
    1012: "the service is shutting down or restarting; reconnect",
}


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def stream_path() -> dict[str, Any]:
    closes = "\n".join(f"| {code} | {why} |" for code, why in sorted(CLOSE_CODES.items()))
    filters = [
        _param(name, "The same filter as the search's (`GET /api/v1/logs`).")
        for name in sorted(FILTER_PARAMS)
    ]
    return {
        "get": {
            "tags": ["stream"],
            "summary": "Live tail (WebSocket)",
            "operationId": "stream_logs",
            "description": (
                "A WebSocket (RFC 6455): send this GET with `Connection: Upgrade`, "
                "`Upgrade: websocket`. The token comes as `Authorization: Bearer`, "
                "`?token=`, or, from a browser (which cannot set headers), as the "
                "subprotocol `Sec-WebSocket-Protocol: bearer, <token>`. Filters as in "
                "search, plus `attributes.<key>`. Frames are JSON text: "
                '`{"type":"events","replay":bool,"data":[event,...]}`, '
                '`{"type":"heartbeat","at":unix}`, '
                '`{"type":"error","code":...,"detail":...}` (before a 4xxx or 1013 '
                "close).\n\n| close code | why |\n|---|---|\n" + closes
            ),
            "security": [{"bearer": []}],
            "parameters": [
                *filters,
                _param(
                    "tail",
                    "First replay the last N stored events that match.",
                    {"type": "integer", "minimum": 0, "maximum": 1000},
                ),
                _param("token", "The bearer token, where no header can be set."),
                _param("tenant", "A platform admin names the tenant (or X-Tenant-ID)."),
                {
                    "name": "Sec-WebSocket-Protocol",
                    "in": "header",
                    "required": False,
                    "description": "`bearer, <token>`: a browser's way to send its token.",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "101": {"description": "Switching Protocols: the stream is open."},
                "404": problem_response(404, "A plain HTTP request (no WebSocket upgrade)."),
            },
        }
    }


PATHS: dict[str, dict[str, Any]] = {"/api/v1/logs/stream": stream_path()}
