"""The gateway's own errors are problem+json, like every error of the API.

nginx answers some requests itself: a body over its limit (413), a service that
does not answer (502), a request it cannot parse (400), a URL too long (414).
Those used to be nginx's HTML pages.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from services.cli.stack import Ports, ProcessGroup, StackConfig, gateway_proc

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def assert_gateway_problem(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == PROBLEM, resp.text
    body = resp.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert body["type"].startswith("https://logserver.dev/problems/")
    # nginx answered, not a service
    assert "x-served-by" not in resp.headers
    return body


async def test_body_over_the_gateway_limit_is_413_problem_json(
    gateway: httpx.AsyncClient,
) -> None:
    body = b"[" + b" " * (12 * 1024 * 1024) + b"]"  # client_max_body_size is 11m
    resp = await gateway.post(
        "/api/v1/logs/bulk", content=body, headers={"content-type": "application/json"}
    )
    problem = assert_gateway_problem(resp, 413)
    assert "11 MiB" in problem["detail"]


async def test_url_over_the_gateway_limit_is_414_problem_json(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.get("/api/v1/logs", params={"q": "x" * 9000})
    assert_gateway_problem(resp, 414)


async def test_unparsable_request_is_400_problem_json(cfg: StackConfig) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", cfg.ports.gateway)
    try:
        writer.write(b"NOT AN HTTP REQUEST\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)  # nginx closes after a 400
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), raw[:200]
    assert b"\r\nContent-Type: application/problem+json\r\n" in head + b"\r\n"
    assert b'"status":400' in body


async def test_services_problem_json_passes_the_gateway_untouched(
    gateway: httpx.AsyncClient,
) -> None:
    resp = await gateway.get("/api/v1/logs/no-such-event/x")
    assert resp.status_code == 404
    assert resp.headers["x-served-by"] == "log"
    assert "No route matches GET /api/v1/logs/no-such-event/x" in resp.json()["detail"]


@pytest.fixture(scope="module")
async def gateway_with_services_down(stack: ProcessGroup, cfg: StackConfig) -> AsyncIterator[str]:
    """A second gateway from the same template whose log and broadcast upstreams are
    ports nobody listens on - to nginx, services that are down - so the shared stack
    keeps its services running for every other test."""
    spare = Ports.free()  # spare.log and spare.broadcast stay closed
    ports = dataclasses.replace(
        cfg.ports, gateway=spare.gateway, log=spare.log, broadcast=spare.broadcast
    )
    spec = gateway_proc(cfg.data_dir / "nginx-services-down", ports, name="gateway-services-down")
    stack.add(spec)
    stack.start(spec.name)
    try:
        stack.wait([spec.name], timeout=30)
        yield f"http://127.0.0.1:{ports.gateway}"
    finally:
        stack.stop(spec.name)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/logs"),
        ("GET", "/api/v1/logs"),
        ("GET", "/api/v1/logs/stream"),
    ],
)
async def test_route_of_a_stopped_service_is_502_problem_json(
    gateway_with_services_down: str, method: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=gateway_with_services_down, timeout=30) as http:
        resp = await http.request(method, path, json={"message": "m"} if method == "POST" else None)
        problem = assert_gateway_problem(resp, 502)
        assert resp.headers["retry-after"] == "5"
        assert "retry" in problem["detail"]
        # the routes of services that run still answer through the same gateway
        alive = await http.get("/api/v1/auth/jwks")
        assert alive.status_code == 200
