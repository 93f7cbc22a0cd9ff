"""Request ids and the X-Served-By header."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from services.core.errors import NotFound
from services.core.jsonlog import request_id_var
from services.core.web.app import install_error_handlers
from services.core.web.middleware import RequestContextMiddleware
from services.core.web.responses import JSONResponse


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware, service="svc-test")
    install_error_handlers(app)

    @app.get("/rid")
    async def rid() -> dict:
        return {"request_id": request_id_var.get()}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("unexpected")

    @app.get("/missing")
    async def missing() -> dict:
        raise NotFound("nothing here")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_request_id_is_echoed_and_visible_to_the_handler(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.get("/rid", headers={"X-Request-ID": "req-abc-123"})
    assert resp.headers["x-request-id"] == "req-abc-123"
    assert resp.json() == {"request_id": "req-abc-123"}


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/rid")
    second = await client.get("/rid")
    rid = first.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert first.json() == {"request_id": rid}
    assert second.headers["x-request-id"] != rid


async def test_request_id_is_bounded(client: httpx.AsyncClient) -> None:
    resp = await client.get("/rid", headers={"X-Request-ID": "x" * 500})
    assert resp.headers["x-request-id"] == "x" * 128


async def test_request_id_does_not_leak_between_requests(client: httpx.AsyncClient) -> None:
    await client.get("/rid", headers={"X-Request-ID": "first"})
    assert request_id_var.get() is None
    assert (await client.get("/rid")).json()["request_id"] != "first"


async def test_served_by_on_every_response(client: httpx.AsyncClient) -> None:
    for path in ("/rid", "/missing", "/no-such-route"):
        resp = await client.get(path)
        assert resp.headers["x-served-by"] == "svc-test"
        assert "x-request-id" in resp.headers
    assert (await client.get("/missing")).status_code == 404


async def test_headers_are_not_duplicated(client: httpx.AsyncClient) -> None:
    resp = await client.get("/rid", headers={"X-Request-ID": "one"})
    assert resp.headers.get_list("x-request-id") == ["one"]
    assert resp.headers.get_list("x-served-by") == ["svc-test"]


async def test_request_id_on_unhandled_500(client: httpx.AsyncClient) -> None:
    resp = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert resp.status_code == 500
    assert resp.headers.get("x-request-id") == "req-500"


def _app_with_access_log(mode: str, slow_ms: float = 1000.0) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        RequestContextMiddleware, service="svc-test", access_log=mode, slow_ms=slow_ms
    )
    install_error_handlers(app)

    @app.get("/ok")
    async def ok() -> dict:
        return {}

    @app.get("/missing")
    async def missing() -> dict:
        raise NotFound("nothing here")

    return app


async def _logged_paths(app: FastAPI, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.set_level("INFO", logger="logserver.http")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for path in ("/ok", "/missing", "/healthz"):
            await c.get(path)
    return [r.path for r in caplog.records if r.name == "logserver.http"]


async def test_access_log_all_logs_every_request_but_probes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await _logged_paths(_app_with_access_log("all"), caplog) == ["/ok", "/missing"]


async def test_access_log_errors_logs_only_failures(caplog: pytest.LogCaptureFixture) -> None:
    assert await _logged_paths(_app_with_access_log("errors"), caplog) == ["/missing"]


async def test_access_log_errors_logs_slow_successes(caplog: pytest.LogCaptureFixture) -> None:
    app = _app_with_access_log("errors", slow_ms=0)
    assert await _logged_paths(app, caplog) == ["/ok", "/missing"]


async def test_access_log_off_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    assert await _logged_paths(_app_with_access_log("off"), caplog) == []


# --- an unhandled exception never leaves the app ------------------------------------
# Starlette's ServerErrorMiddleware renders the 500 handler's response and then
# re-raises; uvicorn, seeing an exception after the response started, closes the
# connection - one nginx had already put back in its keep-alive pool, so the next
# request on it (another caller's POST) got a 502.


class FakeBus:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def publish(self, kind: str, detail: str, **extra: Any) -> None:
        self.calls.append((kind, detail, extra))


def _failing_app() -> tuple[FastAPI, FakeBus]:
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware, service="svc-fail")
    install_error_handlers(app)
    bus = FakeBus()
    app.state.errors = bus

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internals")

    @app.get("/after")
    async def after() -> Response:
        def fail() -> None:
            raise RuntimeError("background task failed")

        return JSONResponse({"ok": True}, background=BackgroundTask(fail))

    @app.get("/midstream")
    async def midstream() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first,"
            raise RuntimeError("export broke mid-way")

        return StreamingResponse(chunks(), media_type="text/plain")

    return app, bus


async def _call(app: FastAPI, path: str, rid: str = "rid-1") -> list[dict[str, Any]]:
    """Call the ASGI app directly, as a server does; return what it sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"x-request-id", rid.encode())],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    sent: list[dict[str, Any]] = []
    requested = False
    connection_open = asyncio.Event()  # never set: the client stays connected

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await connection_open.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)  # must not raise
    return sent


def _unhandled(service: str) -> float:
    value = REGISTRY.get_sample_value("logserver_unhandled_errors_total", {"service": service})
    return value or 0.0


async def test_unhandled_error_is_a_problem_500_and_does_not_escape_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, bus = _failing_app()
    before = _unhandled("svc-fail")
    sent = await _call(app, "/boom", rid="req-boom")
    start, body = sent
    assert start["status"] == 500
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"x-request-id"] == b"req-boom"
    assert headers[b"x-served-by"] == b"svc-fail"
    assert [k for k, _ in start["headers"]].count(b"x-request-id") == 1
    problem = orjson.loads(body["body"])
    assert problem["status"] == 500
    assert problem["type"] == "https://logserver.dev/problems/internal-server-error"
    assert problem["request_id"] == "req-boom"
    assert "secret internals" not in body["body"].decode()
    assert not body.get("more_body", False)
    # what an operator needs is all still there
    assert _unhandled("svc-fail") == before + 1
    assert bus.calls == [
        (
            "unhandled_exception",
            "RuntimeError: secret internals",
            {"path": "/boom", "method": "GET"},
        )
    ]
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert len(logged) == 1 and logged[0].exc_info is not None


async def test_error_after_a_complete_response_does_not_escape_the_app() -> None:
    app, bus = _failing_app()
    sent = await _call(app, "/after")
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert orjson.loads(sent[1]["body"]) == {"ok": True}
    assert [c[1] for c in bus.calls] == ["RuntimeError: background task failed"]


async def test_error_mid_stream_sends_nothing_more_and_does_not_escape_the_app() -> None:
    app, bus = _failing_app()
    sent = await _call(app, "/midstream")
    assert sent[0]["status"] == 200
    # the body is left unfinished (no final more_body=False), so the server drops this
    # one connection: the client must see a truncated response, not a complete one
    assert all(m.get("more_body", False) for m in sent[1:])
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"first,"
    assert [c[1] for c in bus.calls] == ["RuntimeError: export broke mid-way"]
