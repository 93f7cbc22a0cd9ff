"""One live-tail connection: authenticate, subscribe, replay `tail=N`, then stream.

Close codes (sent after an ``{"type":"error"}`` frame, before any event):
4401 missing/invalid token, 4403 role or tenant not allowed, 4404 unknown
tenant, 4422 invalid filter, 4408 too slow (buffer overflow), 1013 backend
unavailable (retry); on shutdown the server closes with 1012 (service restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.broadcast.hub import Hub, Subscriber, events_frame
from services.core.errors import (
    BadRequest,
    Forbidden,
    LogServerError,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from services.core.logfilters import parse_params
from services.core.logstore import recent_events
from services.core.principal import Principal
from services.core.rbac import Permission, allows
from services.core.security import bearer_from_header, token_from_websocket_protocols, verify_token

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_SLOW = 4408
CLOSE_INVALID = 4422
CLOSE_TRY_AGAIN = 1013
STREAM_OPTIONS = frozenset({"tail", "token", "tenant"})

_CODES: list[tuple[type[LogServerError], int, str]] = [
    (Unauthorized, CLOSE_UNAUTHORIZED, "unauthorized"),
    (Forbidden, CLOSE_FORBIDDEN, "forbidden"),
    (NotFound, CLOSE_NOT_FOUND, "not_found"),
    (ValidationFailed, CLOSE_INVALID, "invalid_filter"),
    (BadRequest, CLOSE_INVALID, "bad_request"),
    (Unavailable, CLOSE_TRY_AGAIN, "unavailable"),
]


def close_code(exc: LogServerError) -> tuple[int, str]:
    for kind, code, name in _CODES:
        if isinstance(exc, kind):
            return code, name
    return 1011, "error"


async def _refuse(ws: WebSocket, exc: LogServerError) -> None:
    code, name = close_code(exc)
    frame: dict[str, Any] = {"type": "error", "code": name, "detail": exc.detail}
    if exc.errors:
        frame["errors"] = exc.errors
    with contextlib.suppress(Exception):
        await ws.send_text(orjson.dumps(frame).decode())
        await ws.close(code=code, reason=exc.detail[:120])


async def authorize(ws: WebSocket) -> tuple[Principal, str]:
    token = (
        bearer_from_header(ws.headers.get("authorization"))
        or ws.query_params.get("token")
        or token_from_websocket_protocols(ws.headers.get("sec-websocket-protocol"))
    )
    principal = await verify_token(ws.app.state, token)
    requested = ws.headers.get("x-tenant-id") or ws.query_params.get("tenant")
    principal = principal.acting_on(requested)
    if not allows(principal.role, Permission.LOGS_READ):
        raise Forbidden(f"The '{principal.role}' role may not read logs.")
    tenant = principal.require_tenant()
    if principal.is_platform_admin:
        await ws.app.state.credentials.ensure_tenant(tenant)
    return principal, tenant


def _tail(options: dict[str, str], max_tail: int) -> int:
    raw = options.get("tail", "0")
    if not raw.isdigit() or int(raw) > max_tail:
        raise ValidationFailed(
            f"tail: must be a whole number from 0 to {max_tail}",
            errors=[{"field": "tail", "message": f"0..{max_tail}"}],
        )
    return int(raw)


async def serve(ws: WebSocket) -> None:
    settings = ws.app.state.settings
    hub: Hub = ws.app.state.hub
    wants_protocol = token_from_websocket_protocols(ws.headers.get("sec-websocket-protocol"))
    await ws.accept(subprotocol="bearer" if wants_protocol else None)
    try:
        parsed = parse_params(ws.query_params.multi_items(), STREAM_OPTIONS)
        _principal, tenant = await authorize(ws)
        tail = _tail(parsed.options, settings.stream_max_tail)
    except LogServerError as exc:
        await _refuse(ws, exc)
        return

    closing = asyncio.Event()
    sub = Subscriber(
        tenant=tenant,
        filter=parsed.filter,
        queue=asyncio.Queue(maxsize=settings.stream_buffer_frames),
        on_slow=closing.set,
        held=[] if tail else None,
    )
    try:
        await hub.add(sub)
    except TimeoutError:
        await hub.remove(sub)
        await _refuse(ws, Unavailable("Live fan-out (Redis) is unavailable; reconnect soon."))
        return
    try:
        if tail:
            replay = await recent_events(ws.app.state.clients.db, tenant, parsed.filter, tail)
            sub.seen_ids.update(e["id"] for e in replay)
            await ws.send_text(events_frame([orjson.dumps(e) for e in replay], replay=True))
            fresh = sub.release()  # live events that arrived during the replay
            if fresh:
                await ws.send_text(events_frame(fresh, replay=False))
        await _pump(
            ws, sub, closing, settings.stream_heartbeat_seconds, settings.stream_slow_grace_seconds
        )
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass
    finally:
        await hub.remove(sub)


async def _pump(
    ws: WebSocket, sub: Subscriber, closing: asyncio.Event, heartbeat: float, grace: float
) -> None:
    """Send queued frames and heartbeats until the client leaves or falls behind."""
    receiver = asyncio.create_task(_drain_client(ws))
    slow = asyncio.create_task(closing.wait())
    try:
        while True:
            getter = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait(
                {getter, receiver, slow}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
            if receiver in done:
                return  # client went away
            if slow in done:
                await _refuse_slow(ws, sub)
                return
            if getter in done:
                frame = getter.result()
            else:
                frame = orjson.dumps({"type": "heartbeat", "at": time.time()}).decode()
            # A client that stops reading blocks this send once its socket buffers fill;
            # the bounded queue then overflows and `slow` fires while we wait here.
            sending = asyncio.create_task(ws.send_text(frame))
            done, _ = await asyncio.wait(
                {sending, receiver, slow}, return_when=asyncio.FIRST_COMPLETED
            )
            if sending not in done:
                if receiver in done:
                    sending.cancel()
                    return
                # Slow: give the send a grace period to finish (the client may resume
                # reading and then get the notice), else drop the connection.
                try:
                    await asyncio.wait_for(sending, grace)
                except Exception:
                    return
                await _refuse_slow(ws, sub)
                return
            sending.result()
    finally:
        for task in (receiver, slow):
            task.cancel()


async def _refuse_slow(ws: WebSocket, sub: Subscriber) -> None:
    frame = {
        "type": "error",
        "code": "slow_consumer",
        "detail": f"More than {sub.queue.maxsize} frames waited for this client; it is "
        "disconnected so it cannot slow others. Reconnect with tail=N to catch up.",
    }
    with contextlib.suppress(Exception):
        await ws.send_text(orjson.dumps(frame).decode())
        await ws.close(code=CLOSE_SLOW, reason="too slow")


async def _drain_client(ws: WebSocket) -> None:
    """Clients send nothing we need; reading notices when they disconnect."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
