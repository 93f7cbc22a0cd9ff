"""One live-tail connection: authenticate, subscribe, replay `tail=N`, then stream.

Close codes (sent after an ``{"type":"error"}`` frame): 4401 missing/invalid
token, 4403 role or tenant not allowed, 4404 unknown tenant, 4422 invalid
filter, 4408 too slow (buffer overflow), 4429 too many streams (the tenant's
``max_concurrent_tails``, counted across replicas in Redis, or this process's
``stream_max_connections``), 1013 backend unavailable (retry); on shutdown the
server closes with 1012 (service restart).

An open stream stays subject to its token: it is closed with 4401 when the
token expires, its API key is revoked or its tenant disabled (4404 for a
platform admin's stream of a tenant that is disabled). Changes announced on
the invalidation bus close it at once; a re-check every
``credential_cache_seconds`` bounds the delay should an announcement be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from pymongo.errors import ExecutionTimeout
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.broadcast.access import AccessWatch
from services.broadcast.hub import Subscriber, events_frame
from services.broadcast.state import BroadcastState
from services.core.errors import (
    BadRequest,
    Forbidden,
    LogServerError,
    NotFound,
    QueryTimeout,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from services.core.limitstore import count_refusal, record_refusal
from services.core.logs import ring
from services.core.logs.filters import LogFilter, ParsedParams, parse_params
from services.core.metrics import LIMIT_UTILISATION
from services.core.slots import Lease
from services.core.web.security import TenantScope, logs_read_scope, token_from_websocket_protocols
from services.core.web.state import credentials, invalidations

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_SLOW = 4408
CLOSE_INVALID = 4422
CLOSE_TOO_MANY = 4429
CLOSE_TRY_AGAIN = 1013
STREAM_OPTIONS = frozenset({"tail", "token", "tenant"})

_CODES: list[tuple[type[LogServerError], int, str]] = [
    (Unauthorized, CLOSE_UNAUTHORIZED, "unauthorized"),
    (Forbidden, CLOSE_FORBIDDEN, "forbidden"),
    (NotFound, CLOSE_NOT_FOUND, "not_found"),
    (ValidationFailed, CLOSE_INVALID, "invalid_filter"),
    (BadRequest, CLOSE_INVALID, "bad_request"),
    (Unavailable, CLOSE_TRY_AGAIN, "unavailable"),
    (QueryTimeout, CLOSE_TRY_AGAIN, "timeout"),
    (RateLimited, CLOSE_TOO_MANY, "too_many_streams"),
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
    if isinstance(exc, RateLimited):
        frame |= {"limit": exc.limit, "limit_value": exc.value, "retry_after": exc.retry_after}
    with contextlib.suppress(Exception):
        await ws.send_text(orjson.dumps(frame).decode())
        await ws.close(code=code, reason=exc.detail[:120])


async def take_slot(state: BroadcastState, tenant: str) -> Lease:
    """One of this process's streams and one of the tenant's, or :class:`RateLimited`.

    The caller owns the slot from here: :func:`give_back_slot` when the stream ends.
    """
    cap = state.settings.stream_max_connections
    if cap and state.open_streams >= cap:
        await record_refusal(state.clients.redis, state.limit_guard, tenant, "tail_capacity")
        raise RateLimited(
            f"This live-tail server holds its maximum of {cap:,} streams; reconnect in a "
            "moment (another replica may have room).",
            slug="tail-capacity",
            limit="stream_max_connections",
            value=cap,
            retry_after=5,
        )
    state.open_streams += 1
    try:
        limit = (await state.policies.limits(tenant)).max_concurrent_tails
        lease = await state.tail_leases.acquire(tenant, limit)
    except BaseException:
        state.open_streams -= 1
        raise
    if lease is None:
        state.open_streams -= 1
        count_refusal(tenant, "max_concurrent_tails")  # the script counted the usage
        raise RateLimited(
            f"Tenant '{tenant}' already has {limit:,} live-tail streams open "
            "(max_concurrent_tails); close one first.",
            slug="tail-concurrency",
            limit="max_concurrent_tails",
            value=limit,
            retry_after=10,
        )
    if limit and lease.counted:
        LIMIT_UTILISATION.labels(tenant, "max_concurrent_tails").set(lease.held / limit)
    return lease


def give_back_slot(state: BroadcastState, lease: Lease) -> None:
    state.open_streams -= 1
    state.tail_leases.release(lease)


def _tail(options: dict[str, str], max_tail: int) -> int:
    raw = options.get("tail", "0")
    if not raw.isdigit() or int(raw) > max_tail:
        raise ValidationFailed(
            f"tail: must be a whole number from 0 to {max_tail}",
            errors=[{"field": "tail", "message": f"0..{max_tail}"}],
        )
    return int(raw)


async def serve(ws: WebSocket, state: BroadcastState) -> None:
    settings = state.settings
    wants_protocol = token_from_websocket_protocols(ws.headers.get("sec-websocket-protocol"))
    await ws.accept(subprotocol="bearer" if wants_protocol else None)
    try:
        parsed = parse_params(ws.query_params.multi_items(), STREAM_OPTIONS)
        # The read routes' tenant-scoped dependency, called once accepted: a refusal
        # is an error frame and a close code (below), not a failed handshake.
        scope = await logs_read_scope(ws)
        tail = _tail(parsed.options, settings.stream_max_tail)
    except LogServerError as exc:
        await _refuse(ws, exc)
        return

    try:
        lease = await take_slot(state, scope.tenant)
    except RateLimited as exc:
        await _refuse(ws, exc)
        return
    try:
        await _serve_open(ws, state, scope, parsed, tail)
    finally:
        give_back_slot(state, lease)


async def _serve_open(
    ws: WebSocket, state: BroadcastState, scope: TenantScope, parsed: ParsedParams, tail: int
) -> None:
    """Serve a stream that was authorized and got its slot, until it ends."""
    settings, hub, tenant = state.settings, state.hub, scope.tenant
    watch = AccessWatch(
        credentials(ws.app),
        invalidations(ws.app),
        scope.principal,
        tenant,
        settings.credential_cache_seconds,
    )
    access = watch.start()
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
        watch.close()
        await hub.remove(sub)
        await _refuse(ws, Unavailable("Live fan-out (Redis) is unavailable; reconnect soon."))
        return
    # Reading from the start notices a client that leaves during the replay too.
    receiver = asyncio.create_task(_drain_client(ws))
    try:
        if tail:
            reading = asyncio.create_task(_replay(state, tenant, parsed.filter, tail))
            await asyncio.wait({reading, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if not reading.done():  # the client left: stop the storage read for nobody
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
                return
            try:
                replay = reading.result()
            except LogServerError as exc:
                await _refuse(ws, exc)
                return
            sub.seen_ids.update(e["id"] for e in replay)
            await ws.send_text(events_frame([orjson.dumps(e) for e in replay], replay=True))
            fresh = sub.release()  # live events that arrived during the replay
            if fresh:
                await ws.send_text(events_frame(fresh, replay=False))
        await _pump(
            ws,
            sub,
            closing,
            access,
            receiver,
            settings.stream_heartbeat_seconds,
            settings.stream_slow_grace_seconds,
        )
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass
    finally:
        receiver.cancel()
        watch.close()
        await hub.remove(sub)


async def _replay(
    state: BroadcastState, tenant: str, flt: LogFilter, n: int
) -> list[dict[str, Any]]:
    """The last ``n`` matching events: from the tenant's recent-events ring, and from the
    storage (within ``stream_replay_timeout_seconds``) only for what the ring cannot
    supply. A ring found incomplete is rebuilt in the background."""
    settings = state.settings
    timeout = settings.stream_replay_timeout_seconds
    clients = state.clients
    try:
        if settings.recent_events:
            events, complete = await ring.replay(
                clients.redis,
                clients.db,
                tenant,
                flt,
                n,
                size=settings.recent_events,
                max_time_ms=int(timeout * 1000),
            )
            if not complete:
                state.ring_rebuilds.start(tenant)
            return events
        return await ring.from_storage(clients.db, tenant, flt, n, max_time_ms=int(timeout * 1000))
    except ExecutionTimeout:
        raise QueryTimeout(
            f"The replay read the storage longer than {timeout:g} s; ask for a smaller "
            "tail or narrow the filter."
        ) from None


async def _pump(
    ws: WebSocket,
    sub: Subscriber,
    closing: asyncio.Event,
    access: asyncio.Task[LogServerError],
    receiver: asyncio.Task[None],
    heartbeat: float,
    grace: float,
) -> None:
    """Send queued frames and heartbeats until the client leaves (``receiver`` ends),
    falls behind or loses its access (``access`` ends with the reason)."""
    slow = asyncio.create_task(closing.wait())
    try:
        while True:
            getter = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait(
                {getter, receiver, slow, access},
                timeout=heartbeat,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if getter not in done:
                getter.cancel()
            if receiver in done:
                return  # client went away
            if access in done:
                await _refuse(ws, access.result())
                return
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
        slow.cancel()


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
