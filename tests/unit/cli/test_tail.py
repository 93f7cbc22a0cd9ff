"""`logserver tail`'s loop with a scripted server (no network): reconnects, token renewal,
and what a person is told."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from services.cli.errors import CliError, Unreachable
from services.cli.main import build_parser
from services.cli.reconnect import Backoff, Closed, Resume
from services.cli.tail import TokenSource, follow, require_tenant_for_admin, stream_params
from services.cli.token import Token
from tests.support.fakes import FakeClock

STARTED = 1_772_355_600.0


def ev(i: int) -> dict:
    return {"id": f"e{i}", "received_at": "2026-03-01T09:00:10Z", "level": "INFO"}


class Server:
    """Plays one scripted connection per call: frames to deliver, then how it closed."""

    def __init__(self, script: list[tuple[list[dict], Closed]]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.before_each: Callable[[int], None] = lambda n: None

    async def __call__(
        self, url: str, headers: dict[str, str], on_frame: Callable[[dict[str, Any]], None]
    ) -> Closed:
        self.before_each(len(self.calls))
        self.calls.append((url, headers))
        frames, closed = self.script.pop(0)
        for frame in frames:
            on_frame(frame)
        return closed


class Tokens:
    def __init__(self, clock: FakeClock, lifetime: float = 3600) -> None:
        self.clock, self.lifetime, self.issued = clock, lifetime, 0

    def __call__(self) -> Token:
        self.issued += 1
        return Token(f"tok{self.issued}", self.lifetime, self.clock(), {})


async def run(
    server: Server, tokens: TokenSource, first_tail: int = 0, tenant: str | None = None
) -> tuple[int, list[dict], list[float]]:
    printed: list[dict] = []
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    code = await follow(
        tokens,
        lambda tail: f"ws://gw/api/v1/logs/stream?tail={tail}",
        tenant=tenant,
        first_tail=first_tail,
        emit=printed.append,
        connect=server,
        sleep=sleep,
        backoff=Backoff(rng=lambda: 1.0),
        resume=Resume(started=STARTED),
    )
    return code, printed, waits


def frame(*events: dict, replay: bool = False) -> dict:
    return {"type": "events", "replay": replay, "data": list(events)}


async def test_reconnects_after_restart_overload_and_slow_closes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock()
    server = Server(
        [
            ([frame(ev(1))], Closed(1012, "service restart", established=True)),
            ([], Closed(None, "HTTP 502", http_status=502)),
            ([], Closed(None, "connection refused")),
            ([frame(ev(1), ev(2), replay=True)], Closed(1013, "backend unavailable", True)),
            ([frame(ev(2), ev(3), replay=True)], Closed(4408, "too slow", True)),
            ([frame(ev(4))], Closed(4403, "forbidden", True, detail="not your tenant")),
        ]
    )
    tokens = TokenSource(Tokens(clock), clock=clock)
    code, printed, waits = await run(server, tokens, first_tail=5)
    assert code == 1
    assert [e["id"] for e in printed] == ["e1", "e2", "e3", "e4"]  # nothing twice
    # backoff grows while nothing gets through, and starts over once a stream was live
    assert waits == [0.5, 1.0, 2.0, 0.5, 0.5]
    urls = [url for url, _ in server.calls]
    assert urls[0].endswith("tail=5")  # what the user asked for
    assert all(url.endswith("tail=100") for url in urls[1:])  # the gap, on reconnects
    err = capsys.readouterr().err
    assert "reconnecting in 0.5 s" in err and "reconnected" in err
    assert "stream closed (4403): not your tenant" in err


async def test_too_many_streams_backs_off_at_least_as_long_as_the_server_asks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock()
    detail = "Tenant 'acme' already has 2 live-tail streams open (max_concurrent_tails)"
    server = Server(
        [
            ([], Closed(4429, "too many", detail=detail, retry_after=10)),
            ([], Closed(4429, "too many", detail=detail, retry_after=None)),
            ([frame(ev(1))], Closed(4403, "forbidden", True, detail="stop here")),
        ]
    )
    code, printed, waits = await run(server, TokenSource(Tokens(clock), clock=clock))
    assert code == 1 and [e["id"] for e in printed] == ["e1"]
    assert waits == [10.0, 1.0]  # the server's retry_after, then the plain backoff
    err = capsys.readouterr().err
    assert f"stream refused (4429): {detail}; backing off, retrying in 10.0 s" in err


async def test_renews_the_token_before_it_expires_for_the_next_connection() -> None:
    clock = FakeClock()
    source = Tokens(clock, lifetime=600)  # renewed with 60 s left
    tokens = TokenSource(source, clock=clock)
    server = Server(
        [
            ([frame(ev(1))], Closed(1012, "restart", True)),
            ([frame(ev(2))], Closed(1012, "restart", True)),
            ([], Closed(1000, "bye", True)),
        ]
    )
    server.before_each = lambda n: setattr(clock, "now", clock.now + (100 if n == 1 else 450))
    code, _, _ = await run(server, tokens)
    assert code == 0
    auth = [headers["Authorization"] for _, headers in server.calls]
    # +100 s: 500 s left, kept; +450 s more: 50 s left (< 60 s), renewed first
    assert auth == ["Bearer tok1", "Bearer tok1", "Bearer tok2"]


def test_refresh_point() -> None:
    assert Token("t", 3600, 0, {}).refresh_at == 3240  # 10% of an hour = 360 s before
    assert Token("t", 300, 0, {}).refresh_at == 240  # 60 s before
    assert Token("t", 60, 0, {}).refresh_at == 30  # short tokens: at half-life, not at once


class Enough(Exception):
    """Ends an endless loop in a test."""


async def test_keep_fresh_renews_in_the_background() -> None:
    clock = FakeClock()
    source = Tokens(clock, lifetime=600)
    tokens = TokenSource(source, first=source(), clock=clock)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        if len(slept) == 2:
            raise Enough  # one renewal was due and done by now

    with pytest.raises(Enough):
        await tokens.keep_fresh(sleep=sleep)
    assert slept[0] == 540
    assert tokens.token is not None and tokens.token.value == "tok2"


async def test_a_4401_gets_one_new_token_then_stops(capsys: pytest.CaptureFixture[str]) -> None:
    clock = FakeClock()
    source = Tokens(clock)
    server = Server(
        [
            ([frame(ev(1))], Closed(4401, "unauthorized", True, detail="Token expired.")),
            ([], Closed(4401, "unauthorized", detail="Key revoked.")),
        ]
    )
    code, _, waits = await run(server, TokenSource(source, clock=clock))
    assert code == 1
    assert source.issued == 2
    assert waits == []
    assert "stream closed (4401): Key revoked." in capsys.readouterr().err


async def test_an_unreachable_token_endpoint_is_retried_while_reconnecting() -> None:
    clock = FakeClock()
    source = Tokens(clock)
    failures = iter([Unreachable("http://gw", ConnectionRefusedError(111, "x"))])

    def flaky() -> Token:
        for exc in failures:
            raise exc
        return source()

    tokens = TokenSource(flaky, clock=clock)
    server = Server([([], Closed(1000, "bye"))])
    code, _, waits = await run(server, tokens)
    assert code == 0
    assert waits == [0.5]


async def test_a_platform_admin_without_tenant_is_told_about_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    detail = "A platform admin token must name the tenant to act on: send the X-Tenant-ID header"
    server = Server([([], Closed(4422, "bad request", detail=detail))])
    clock = FakeClock()
    code, _, _ = await run(server, TokenSource(Tokens(clock), clock=clock))
    assert code == 1
    err = capsys.readouterr().err
    assert "--tenant" in err and "X-Tenant-ID" not in err


def jwt(claims: dict) -> str:
    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.sig"


def test_admin_credential_without_tenant_is_refused_before_connecting() -> None:
    with pytest.raises(CliError, match="--tenant"):
        require_tenant_for_admin(jwt({"tenant": "*", "role": "admin"}), None)
    require_tenant_for_admin(jwt({"tenant": "*", "role": "admin"}), "acme")
    require_tenant_for_admin(jwt({"tenant": "acme", "role": "viewer"}), None)
    require_tenant_for_admin("not-a-jwt", None)


def test_stream_params_from_arguments() -> None:
    args = build_parser().parse_args(
        [
            "tail",
            "--level",
            "ERROR",
            "--level",
            "WARNING",
            "--service",
            "api",
            "--attr",
            "stage=prod",
            "--attr",
            "k=a=b",
            "--q",
            "x y",
        ]
    )
    assert stream_params(args) == [
        ("level", "ERROR"),
        ("level", "WARNING"),
        ("service", "api"),
        ("q", "x y"),
        ("attributes.stage", "prod"),
        ("attributes.k", "a=b"),
    ]
