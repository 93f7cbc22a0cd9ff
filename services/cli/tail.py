"""`logserver tail`: follow a tenant's events live over the WebSocket API.

It keeps following across service restarts: after a close that says "try
again" (1012 restart, 1013 backend unavailable, 4408 too slow, 4429 too many
streams for the tenant, a lost connection or a 502/503/504 from the gateway)
it reconnects with backoff (for 4429 no sooner than the server's
``retry_after``)
(`services/cli/reconnect.py`), replaying the last events to fill the gap
without printing any event twice. Its token is renewed before it expires and
the new one is used for the next connection; a 4401 gets one fresh token.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from services.cli.errors import CliError, Unreachable, network_reason
from services.cli.reconnect import (
    CLOSE_TOO_MANY,
    RETRY_CLOSES,
    Action,
    Backoff,
    Closed,
    Resume,
    decide,
    retry_delay,
)
from services.cli.token import Token, get_token, load_credential, token_claims
from services.core.rbac import PLATFORM_TENANT

COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
OpenStream = Callable[[str, dict[str, str], Callable[[dict[str, Any]], None]], Awaitable[Closed]]


def stream_url(base: str, params: list[tuple[str, str]]) -> str:
    ws_base = base.replace("https://", "wss://").replace("http://", "ws://").rstrip("/")
    query = urlencode(params)
    return f"{ws_base}/api/v1/logs/stream" + (f"?{query}" if query else "")


def stream_params(args: Any) -> list[tuple[str, str]]:
    """The filters of ``args`` as query parameters (``tail`` is added per connection)."""
    params: list[tuple[str, str]] = []
    for level in args.level or []:
        params.append(("level", level))
    for name in ("min_level", "service", "action", "q"):
        value = getattr(args, name)
        if value:
            params.append((name, value))
    for pair in args.attr or []:
        key, sep, value = pair.partition("=")
        if not key or not sep:
            raise CliError(f"--attr {pair!r}: write it as key=value")
        params.append((f"attributes.{key}", value))
    return params


def human(event: dict, colour: bool) -> str:
    level = event.get("level", "INFO")
    text = event.get("message") or event.get("action") or ""
    extra = {k: event[k] for k in ("service", "host", "user_id", "trace_id") if k in event}
    if event.get("attributes"):
        extra.update(event["attributes"])
    tail = " ".join(f"{k}={v}" for k, v in extra.items())
    line = f"{event.get('timestamp', '')} {level:<8} {text}" + (f"  {tail}" if tail else "")
    if colour and COLOURS.get(level):
        return f"{COLOURS[level]}{line}\x1b[0m"
    return line


def note(message: str) -> None:
    print(f"logserver: {message}", file=sys.stderr, flush=True)


def require_tenant_for_admin(token: str, tenant: str | None) -> None:
    """A platform-admin token must name a tenant: say so in CLI terms before connecting."""
    if not tenant and token_claims(token).get("tenant") == PLATFORM_TENANT:
        raise CliError(
            "this is a platform-admin credential: name the tenant to follow with --tenant KEY"
        )


class TokenSource:
    """The current token; renewed before it expires (see `Token.refresh_at`)."""

    def __init__(
        self, fetch: Callable[[], Token], first: Token | None = None, clock=time.monotonic
    ) -> None:
        self.fetch, self.token, self.clock = fetch, first, clock

    async def get(self) -> str:
        if self.token is None or self.token.needs_refresh(self.clock()):
            self.token = await asyncio.to_thread(self.fetch)
        return self.token.value

    def invalidate(self) -> None:
        self.token = None

    async def keep_fresh(self, sleep=asyncio.sleep) -> None:
        """Renew in the background, so the next reconnect already has a valid token."""
        while True:
            wait = self.token.refresh_at - self.clock() if self.token else 0.0
            if wait > 0:
                await sleep(wait)
                continue
            try:
                self.token = await asyncio.to_thread(self.fetch)
            except CliError as exc:
                # The next connection fetches again and reports it if it persists.
                note(f"could not renew the token ({exc}); trying again in 30 s")
                await sleep(30)


async def open_stream(
    url: str, headers: dict[str, str], on_frame: Callable[[dict[str, Any]], None]
) -> Closed:
    """One connection, until it closes; how it ended (never raises for network trouble)."""
    established, detail, retry_after = False, None, None
    try:
        async with websockets.connect(
            url, additional_headers=headers, max_size=None, open_timeout=10
        ) as ws:
            try:
                async for raw in ws:
                    frame = orjson.loads(raw)
                    if frame.get("type") == "error":
                        detail = str(frame.get("detail", ""))
                        if isinstance(frame.get("retry_after"), int | float):
                            retry_after = float(frame["retry_after"])
                        continue
                    established = True
                    on_frame(frame)
            except ConnectionClosed:
                pass
            code = ws.close_code if ws.close_code is not None else 1006
            reason = RETRY_CLOSES.get(code) or ws.close_reason or "closed"
            return Closed(code, reason, established, detail=detail, retry_after=retry_after)
    except InvalidStatus as exc:
        status = exc.response.status_code
        return Closed(None, f"HTTP {status}", established, http_status=status)
    except InvalidURI as exc:
        raise CliError(f"not a usable URL: {url} ({exc})") from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        return Closed(None, network_reason(exc), established, detail=detail)


async def follow(
    tokens: TokenSource,
    url_for: Callable[[int], str],
    *,
    tenant: str | None,
    first_tail: int,
    emit: Callable[[dict[str, Any]], None],
    connect: OpenStream = open_stream,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    backoff: Backoff | None = None,
    resume: Resume | None = None,
) -> int:
    """Connect, print, and reconnect after retryable closes; the exit status when it stops."""
    backoff = backoff or Backoff()
    resume = resume or Resume(started=time.time())
    reauthed = False  # a 4401 gets one new token; a second one in a row stops
    reconnecting = False

    def on_frame(frame: dict[str, Any]) -> None:
        nonlocal reconnecting
        if reconnecting:
            reconnecting = False
            note("reconnected")
        if frame.get("type") != "events":
            return
        events, warning = resume.events(frame)
        for event in events:
            emit(event)
        if warning:
            note(warning)

    while True:
        try:
            token = await tokens.get()
        except Unreachable as exc:
            delay = backoff.next()
            note(f"{exc}; retrying in {delay:.1f} s")
            await sleep(delay)
            continue
        headers = {"Authorization": f"Bearer {token}"}
        if tenant:
            headers["X-Tenant-ID"] = tenant
        closed = await connect(url_for(resume.replay_size(first_tail)), headers, on_frame)
        if closed.code is not None:
            resume.resuming = True  # a stream was open: from now on, replay only the gap
        if closed.established:
            backoff.reset()
            reauthed = False
        action = decide(closed)
        if action is Action.STOP:
            if closed.code == 1000:
                return 0
            detail = closed.detail or closed.reason
            if not tenant and "X-Tenant-ID" in detail:
                detail = "a platform-admin credential must name the tenant: pass --tenant KEY"
            code = closed.code if closed.code is not None else closed.reason
            note(f"stream closed ({code}): {detail}")
            return 1
        if action is Action.REAUTH:
            if reauthed:
                note(f"stream closed (4401): {closed.detail or 'token refused'}")
                return 1
            reauthed = True
            tokens.invalidate()
            note("the server refused the token (expired?); getting a new one")
            continue
        delay = retry_delay(closed, backoff)
        if closed.code is None:
            note(f"cannot connect to the stream ({closed.reason}); retrying in {delay:.1f} s")
        elif closed.code == CLOSE_TOO_MANY:
            note(
                f"stream refused ({closed.code}): {closed.detail or closed.reason}; "
                f"backing off, retrying in {delay:.1f} s"
            )
        else:
            note(f"stream closed ({closed.code} {closed.reason}); reconnecting in {delay:.1f} s")
        reconnecting = True
        await sleep(delay)


def run_tail(args) -> int:
    client_id, secret = load_credential(args.client_id, args.client_secret, args.credentials)
    if args.tail < 0:
        raise CliError("--tail must be 0 or more")
    params = stream_params(args)

    def fetch() -> Token:
        return get_token(args.url, client_id, secret)

    first = fetch()
    require_tenant_for_admin(first.value, args.tenant)
    colour = sys.stdout.isatty()

    def emit(event: dict[str, Any]) -> None:
        line = orjson.dumps(event).decode() if args.json else human(event, colour)
        print(line, flush=True)

    def url_for(tail: int) -> str:
        return stream_url(args.url, params + ([("tail", str(tail))] if tail else []))

    async def run() -> int:
        tokens = TokenSource(fetch, first)
        refresher = asyncio.create_task(tokens.keep_fresh())
        try:
            return await follow(
                tokens, url_for, tenant=args.tenant, first_tail=args.tail, emit=emit
            )
        finally:
            refresher.cancel()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0
