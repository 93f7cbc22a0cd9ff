"""`logserver tail`: follow a tenant's events live over the WebSocket API."""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlencode

import orjson
import websockets

from services.cli.token import fetch_token, load_credential

COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}


def stream_url(base: str, params: list[tuple[str, str]]) -> str:
    ws_base = base.replace("https://", "wss://").replace("http://", "ws://").rstrip("/")
    query = urlencode(params)
    return f"{ws_base}/api/v1/logs/stream" + (f"?{query}" if query else "")


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


async def follow(url: str, token: str, as_json: bool, tenant: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if tenant:
        headers["X-Tenant-ID"] = tenant
    colour = sys.stdout.isatty()
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame["type"] == "events":
                for event in frame["data"]:
                    print(
                        orjson.dumps(event).decode() if as_json else human(event, colour),
                        flush=True,
                    )
            elif frame["type"] == "error":
                print(f"stream closed: {frame['detail']}", file=sys.stderr)
                return 1
    return 0


def run_tail(args) -> int:
    client_id, secret = load_credential(args.client_id, args.client_secret, args.credentials)
    token = fetch_token(args.url, client_id, secret)["access_token"]
    params: list[tuple[str, str]] = []
    for level in args.level or []:
        params.append(("level", level))
    for name in ("min_level", "service", "action", "q"):
        value = getattr(args, name)
        if value:
            params.append((name, value))
    for pair in args.attr or []:
        key, _, value = pair.partition("=")
        params.append((f"attributes.{key}", value))
    if args.tail:
        params.append(("tail", str(args.tail)))
    try:
        return asyncio.run(follow(stream_url(args.url, params), token, args.json, args.tenant))
    except KeyboardInterrupt:
        return 0
    except websockets.exceptions.ConnectionClosedError as exc:
        print(f"stream closed: {exc}", file=sys.stderr)
        return 1
