"""Live-tail limits: a tenant's max_concurrent_tails across replicas, the process cap."""

from __future__ import annotations

import contextlib

import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from services.cli.stack import ProcessGroup, ProcSpec, StackConfig
from tests.integration.broadcast.test_stream import tail, ws_url
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually, free_port, set_limits

pytestmark = pytest.mark.integration


async def refused_with(url: str, token: str) -> tuple[int | None, dict]:
    """Connect; the error frame and close code the server answered with."""
    async with websockets.connect(url, additional_headers=bearer(token)) as ws:
        frame = orjson.loads(await ws.recv())
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()
        return ws.close_code, frame


async def test_the_tail_cap_closes_the_extra_stream_with_4429(
    api: Api, cfg: StackConfig, stack: ProcessGroup
) -> None:
    tenant = await api.tenant("tails", limits={"max_concurrent_tails": 2})
    other = await api.tenant("tails")
    viewer = (await api.role_tokens(tenant))["viewer"]
    o_viewer = (await api.role_tokens(other))["viewer"]
    base = stack.specs["broadcast"]
    port = free_port()
    if "broadcast-lim" not in stack.specs:
        env = {**base.env, "LOGSERVER_PORT": str(port)}
        stack.add(
            ProcSpec("broadcast-lim", base.argv, env, ("http", f"http://127.0.0.1:{port}/healthz"))
        )
    second = stack.specs["broadcast-lim"].probe[1].removesuffix("/healthz")
    stack.start("broadcast-lim")
    try:
        stack.wait(["broadcast-lim"], timeout=60)
        # one stream on each replica: the count is the tenant's, not a process's
        async with tail(cfg.gateway_url, viewer), tail(second, viewer):
            code, frame = await refused_with(ws_url(cfg.gateway_url), viewer)
            assert code == 4429
            assert frame["type"] == "error" and frame["code"] == "too_many_streams"
            assert frame["limit"] == "max_concurrent_tails" and frame["limit_value"] == 2
            assert "max_concurrent_tails" in frame["detail"] and frame["retry_after"] >= 1
            code, _ = await refused_with(ws_url(second), viewer)
            assert code == 4429
            async with tail(cfg.gateway_url, o_viewer):  # another tenant is not affected
                pass
            usage = await api.http.get("/api/v1/logs/usage", headers=bearer(viewer))
            assert usage.json()["open_tails"] == 2
            assert usage.json()["refused"]["max_concurrent_tails"] == 2

        # closed streams give their slots back
        async def open_again() -> bool:
            async with websockets.connect(
                ws_url(cfg.gateway_url), additional_headers=bearer(viewer)
            ) as ws:
                frame = orjson.loads(await ws.recv())
                return frame["type"] != "error"

        await eventually(open_again, within=10)
        await set_limits(api, tenant, max_concurrent_tails=0)  # 0: no limit
        async with (
            tail(cfg.gateway_url, viewer),
            tail(cfg.gateway_url, viewer),
            tail(second, viewer),
        ):
            pass
    finally:
        stack.stop("broadcast-lim")


async def test_the_process_cap_closes_with_4429(
    api: Api, cfg: StackConfig, stack: ProcessGroup
) -> None:
    tenant = await api.tenant("pcap")
    viewer = (await api.role_tokens(tenant))["viewer"]
    base = stack.specs["broadcast"]
    port = free_port()
    if "broadcast-one" not in stack.specs:
        env = {**base.env, "LOGSERVER_PORT": str(port), "LOGSERVER_STREAM_MAX_CONNECTIONS": "1"}
        stack.add(
            ProcSpec("broadcast-one", base.argv, env, ("http", f"http://127.0.0.1:{port}/healthz"))
        )
    url = stack.specs["broadcast-one"].probe[1].removesuffix("/healthz")
    stack.start("broadcast-one")
    try:
        stack.wait(["broadcast-one"], timeout=60)
        async with tail(url, viewer):
            code, frame = await refused_with(ws_url(url), viewer)
            assert code == 4429 and frame["limit"] == "stream_max_connections"
        async with tail(url, viewer):  # and the slot is free again
            pass
    finally:
        stack.stop("broadcast-one")
