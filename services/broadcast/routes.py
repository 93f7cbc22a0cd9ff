"""Routes of the broadcast service: the live-tail WebSocket."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from services.broadcast.stream import serve

router = APIRouter(prefix="/api/v1/logs", tags=["stream"])


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    """Live tail; see `services/broadcast/stream.py` for frames and close codes."""
    await serve(ws)
