"""problem+json rendering: the error hierarchy and the handlers every service installs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from services.core.errors import (
    PROBLEM_BASE,
    BadRequest,
    Conflict,
    Forbidden,
    LogServerError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
    http_status_problem,
    validation_errors,
)
from services.core.web.app import install_error_handlers

PROBLEM = "application/problem+json"
SECRET = "sk_live_TOPSECRET_9f8e7d"
INTERNAL = "db password is hunter2"

# --- the hierarchy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status", "slug"),
    [
        (BadRequest, 400, "bad-request"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not-found"),
        (Conflict, 409, "conflict"),
        (PayloadTooLarge, 413, "payload-too-large"),
        (UnsupportedMediaType, 415, "unsupported-media-type"),
        (ValidationFailed, 422, "validation"),
    ],
)
def test_error_classes(cls: type[LogServerError], status: int, slug: str) -> None:
    err = cls("what to do about it")
    assert isinstance(err, LogServerError)
    assert err.to_problem("/x") == {
        "type": PROBLEM_BASE + slug,
        "title": cls.title,
        "status": status,
        "detail": "what to do about it",
        "instance": "/x",
    }


def test_problem_without_instance_and_with_errors() -> None:
    err = ValidationFailed("bad", errors=[{"field": "a", "message": "m"}])
    body = err.to_problem()
    assert "instance" not in body
    assert body["errors"] == [{"field": "a", "message": "m"}]


def test_unauthorized_defaults() -> None:
    err = Unauthorized()
    assert err.status == 401
    assert err.detail
    assert err.headers["WWW-Authenticate"].startswith("Bearer")


def test_unavailable_retry_after() -> None:
    assert Unavailable("down").headers == {"Retry-After": "5"}
    assert Unavailable("down", retry_after=7).headers == {"Retry-After": "7"}


def test_http_status_problem() -> None:
    assert http_status_problem(405, "nope") == {
        "type": PROBLEM_BASE + "method-not-allowed",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "nope",
    }
    assert http_status_problem(599, "odd")["title"] == "Error"


def test_validation_errors_drop_input_and_location_prefix() -> None:
    raw = [
        {"loc": ("body", "user", "password"), "msg": "too short", "input": SECRET},
        {"loc": ("query", "limit"), "msg": "too big", "input": 5000},
        {"loc": ("body",), "msg": "missing", "input": None},
        {},
    ]
    assert validation_errors(raw) == [
        {"field": "user.password", "message": "too short"},
        {"field": "limit", "message": "too big"},
        {"field": "body", "message": "missing"},
        {"field": "body", "message": "invalid"},
    ]


# --- the handlers, through a tiny app ----------------------------------------------


class Inner(BaseModel):
    count: int = Field(ge=0)


class Item(BaseModel):
    name: str = Field(min_length=3)
    api_key: str = Field(pattern=r"^lsk_[0-9a-f]{8}$")
    inner: Inner | None = None


class FakeBus:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def publish(self, kind: str, detail: str, **extra: Any) -> None:
        self.calls.append((kind, detail, extra))


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/widgets/{wid}")
    async def widget(wid: int) -> dict:
        raise NotFound(f"No widget {wid}.")

    @app.get("/down")
    async def down() -> dict:
        raise Unavailable("The queue does not answer; retry shortly.", retry_after=7)

    @app.get("/private")
    async def private() -> dict:
        raise Unauthorized()

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError(INTERNAL)

    @app.post("/items")
    async def items(item: Item) -> dict:
        return {"ok": True}

    @app.post("/upload")
    async def upload(request: Request) -> dict:
        return {"size": len(await request.body())}

    return app


@pytest.fixture
def app() -> FastAPI:
    return build_app()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status
    assert resp.headers["content-type"] == PROBLEM
    body = resp.json()
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM_BASE)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_logserver_error_is_rendered(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/widgets/42"), 404)
    assert body == {
        "type": PROBLEM_BASE + "not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "No widget 42.",
        "instance": "/widgets/42",
    }


async def test_unavailable_has_retry_after(client: httpx.AsyncClient) -> None:
    resp = await client.get("/down")
    body = assert_problem(resp, 503)
    assert resp.headers["retry-after"] == "7"
    assert body["type"] == PROBLEM_BASE + "unavailable"
    assert "retry" in body["detail"]


async def test_unauthorized_has_www_authenticate(client: httpx.AsyncClient) -> None:
    resp = await client.get("/private")
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"] == 'Bearer realm="logserver"'


async def test_validation_error_lists_fields_without_echoing_input(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.post(
        "/items", json={"name": "ok-name", "api_key": SECRET, "inner": {"count": -1}}
    )
    body = assert_problem(resp, 422)
    assert body["type"] == PROBLEM_BASE + "validation"
    assert body["title"] == "Unprocessable Content"
    assert body["instance"] == "/items"
    fields = [e["field"] for e in body["errors"]]
    assert sorted(fields) == ["api_key", "inner.count"]
    assert all(set(e) == {"field", "message"} for e in body["errors"])
    assert body["detail"].startswith(fields[0] + ": ")
    assert SECRET not in resp.text
    assert "TOPSECRET" not in resp.text


async def test_validation_error_for_missing_body_and_bad_path(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/items", json={"api_key": "lsk_0123abcd"}), 422)
    assert [e["field"] for e in body["errors"]] == ["name"]
    body = assert_problem(await client.post("/items"), 422)
    assert body["errors"][0]["field"] == "body"
    body = assert_problem(await client.get("/widgets/not-a-number"), 422)
    assert body["errors"][0]["field"] == "wid"


async def test_validation_error_on_malformed_json_does_not_echo_it(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.post(
        "/items",
        content=b'{"api_key": "' + SECRET.encode() + b'"',
        headers={"content-type": "application/json"},
    )
    assert_problem(resp, 422)
    assert SECRET not in resp.text


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/no/such/route"), 404)
    assert body["type"] == PROBLEM_BASE + "not-found"
    assert "GET /no/such/route" in body["detail"]
    assert body["instance"] == "/no/such/route"


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    resp = await client.delete("/down")
    body = assert_problem(resp, 405)
    assert "DELETE" in body["detail"]
    assert "GET" in resp.headers["allow"]


async def test_unhandled_error_is_500_without_leaking(client: httpx.AsyncClient) -> None:
    resp = await client.get("/boom")
    body = assert_problem(resp, 500)
    assert body["type"] == PROBLEM_BASE + "internal-server-error"
    assert INTERNAL not in resp.text
    assert "hunter2" not in resp.text
    assert "RuntimeError" not in resp.text
    assert "Traceback" not in resp.text


async def test_unhandled_error_is_published_on_the_error_bus(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    bus = FakeBus()
    app.state.errors = bus
    resp = await client.get("/boom")
    assert resp.status_code == 500
    assert bus.calls == [
        ("unhandled_exception", f"RuntimeError: {INTERNAL}", {"path": "/boom", "method": "GET"})
    ]


async def test_handled_errors_are_not_published(app: FastAPI, client: httpx.AsyncClient) -> None:
    bus = FakeBus()
    app.state.errors = bus
    await client.get("/widgets/1")
    await client.get("/down")
    await client.post("/items", json={})
    assert bus.calls == []


async def test_client_gone_mid_body_is_499_and_not_an_error(app: FastAPI) -> None:
    bus = FakeBus()
    app.state.errors = bus
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/upload",
        "raw_path": b"/upload",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 499
    assert bus.calls == []


def test_rate_limited_names_its_limit_and_when_to_retry() -> None:
    from services.core.errors import RateLimited, ServerBusy

    exc = RateLimited(
        "over", slug="query-concurrency", limit="max_concurrent_queries", value=2, retry_after=0.2
    )
    assert exc.status == 429 and exc.headers == {"Retry-After": "1"}  # at least one second
    assert exc.to_problem("/x") == {
        "type": PROBLEM_BASE + "query-concurrency",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "over",
        "instance": "/x",
        "limit": "max_concurrent_queries",
        "limit_value": 2,
        "retry_after": 1,
    }
    busy = ServerBusy("busy", retry_after=2)
    assert busy.status == 503 and busy.type == PROBLEM_BASE + "server-busy"
