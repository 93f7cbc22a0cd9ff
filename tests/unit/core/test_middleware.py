"""Request ids and the X-Served-By header."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.core.app import install_error_handlers
from services.core.errors import NotFound
from services.core.jsonlog import request_id_var
from services.core.middleware import RequestContextMiddleware


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
