"""Direct routes: served without FastAPI's routing, answered like every other route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp

from services.core.errors import LogServerError, ValidationFailed
from services.core.web.app import install_error_handlers
from services.core.web.direct import DirectRoutes, FrontDoor, find_handler
from services.core.web.middleware import RequestContextMiddleware
from services.core.web.responses import JSONResponse

SERVICE = "svc-direct"


async def _accept(request: Request) -> Response:
    body = await request.body()
    if body == b"invalid":
        raise ValidationFailed("level: not a level", errors=[{"field": "level", "message": "x"}])
    if body == b"boom":
        raise RuntimeError("secret internals")
    return JSONResponse({"direct": True, "bytes": len(body)}, status_code=202)


ROUTES = {("POST", "/ingest"): _accept}


@pytest.fixture(params=["inside-fastapi", "front-door"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The direct routes as a middleware inside the app (what tests calling the app get)
    and ahead of it, in the FrontDoor the server runs: answered alike."""
    app = FastAPI()
    served: ASGIApp = app
    if request.param == "inside-fastapi":
        app.add_middleware(DirectRoutes, routes=ROUTES)
    else:
        chain = RequestContextMiddleware(DirectRoutes(app, ROUTES), service=SERVICE)
        served = FrontDoor(app, chain, ROUTES)
    app.add_middleware(RequestContextMiddleware, service=SERVICE)
    install_error_handlers(app)

    @app.post("/ingest")
    async def declared(request: Request) -> Response:
        return JSONResponse({"direct": False})

    transport = httpx.ASGITransport(app=served, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _count(status: str) -> float:
    labels = {"service": SERVICE, "method": "POST", "route": "/ingest", "status": status}
    return REGISTRY.get_sample_value("logserver_http_requests_total", labels) or 0.0


async def test_the_direct_endpoint_answers_with_request_id_and_metrics(
    client: httpx.AsyncClient,
) -> None:
    before = _count("202")
    resp = await client.post("/ingest", content=b"abc", headers={"X-Request-ID": "r-1"})
    assert resp.status_code == 202
    assert resp.json() == {"direct": True, "bytes": 3}
    assert resp.headers["x-request-id"] == "r-1"
    assert resp.headers["x-served-by"] == SERVICE
    assert _count("202") == before + 1  # labelled with the route template, not "unmatched"


async def test_an_error_is_the_apps_problem_json(client: httpx.AsyncClient) -> None:
    resp = await client.post("/ingest", content=b"invalid")
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json() == {
        "type": "https://logserver.dev/problems/validation",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "level: not a level",
        "instance": "/ingest",
        "errors": [{"field": "level", "message": "x"}],
    }


async def test_an_unexpected_error_is_the_500_every_route_gives(client: httpx.AsyncClient) -> None:
    resp = await client.post("/ingest", content=b"boom", headers={"X-Request-ID": "r-2"})
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["request_id"] == "r-2"
    assert "secret internals" not in resp.text


async def test_other_methods_and_paths_go_to_fastapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ingest")).status_code == 405
    assert (await client.post("/ingest/")).status_code in (307, 404)
    assert (await client.get("/nowhere")).json()["status"] == 404


def test_the_most_specific_handler_is_chosen_and_exception_is_left_out() -> None:
    async def generic(request: Request, exc: Exception) -> Response:
        return Response()

    async def specific(request: Request, exc: Exception) -> Response:
        return Response()

    handlers = {LogServerError: generic, ValidationFailed: specific, Exception: generic}
    assert find_handler(handlers, ValidationFailed("x")) is specific
    assert find_handler(handlers, LogServerError("x")) is generic
    assert find_handler(handlers, ClientDisconnect()) is None
    assert find_handler(handlers, RuntimeError("x")) is None
