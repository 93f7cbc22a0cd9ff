"""Routes of the broadcast service: the live-tail WebSocket."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, WebSocket

from services.broadcast.state import BroadcastService
from services.broadcast.stream import serve
from services.core.logs.filters import FILTER_DOCS, REPEATABLE

router = APIRouter(prefix="/api/v1/logs", tags=["stream"])


@router.websocket("/stream")
async def stream(ws: WebSocket, state: BroadcastService) -> None:
    """Live tail; see `services/broadcast/stream.py` for frames and close codes.

    Authorization is not a dependency here: it runs once the connection is accepted
    (``logs_read_scope``, the dependency of the HTTP read routes), so a refusal
    reaches the client as an error frame and a close code, not a failed handshake."""
    await serve(ws, state)


def _parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


# The stream's query parameters as OpenAPI parameter objects: FastAPI leaves WebSocket
# routes out of its OpenAPI, so the API reference describes the stream with these.
STREAM_PARAMETERS: list[dict[str, Any]] = [
    _parameter(
        "tail",
        "First replay the last N matching events (at most stream_max_tail).",
        {"type": "integer", "minimum": 0, "default": 0},
    ),
    _parameter(
        "token",
        "The bearer token, for a browser (which cannot set headers on a WebSocket); "
        "or `Sec-WebSocket-Protocol: bearer, <token>`, or an Authorization header.",
        {"type": "string"},
    ),
    _parameter(
        "tenant",
        "The tenant a platform admin streams (as the X-Tenant-ID header).",
        {"type": "string"},
    ),
    *(
        _parameter(
            name,
            doc,
            {"type": "array", "items": {"type": "string"}}
            if name in REPEATABLE
            else {"type": "string"},
        )
        for name, doc in FILTER_DOCS.items()
    ),
]
