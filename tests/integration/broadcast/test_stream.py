"""Live tail through the gateway: isolation, filters, replay seam, backpressure, restarts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import orjson
import pytest
import redis.asyncio as aioredis
import websockets
from websockets.exceptions import ConnectionClosed

from services.cli.stack import ProcessGroup, ProcSpec, StackConfig
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually, ingest

pytestmark = pytest.mark.integration


def ws_url(base: str, **params: str) -> str:
    url = base.replace("http://", "ws://") + "/api/v1/logs/stream"
    return url + ("?" + urlencode(params) if params else "")


class Tail:
    """A test client collecting event frames in the background."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict] = []
        self.frames: list[dict] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                frame = orjson.loads(raw)
                self.frames.append(frame)
                if frame["type"] == "events":
                    self.events.extend(frame["data"])

    def ids(self) -> list[str]:
        return [e["id"] for e in self.events]

    async def wait_for_ids(self, ids: set[str], within: float = 30) -> None:
        async def arrived():
            return ids <= set(self.ids())

        await eventually(arrived, within=within)

    async def close(self) -> None:
        await self.ws.close()
        await self.task


@contextlib.asynccontextmanager
async def tail(base: str, token: str, **params: str) -> AsyncIterator[Tail]:
    ws = await websockets.connect(
        ws_url(base, **params), additional_headers={"Authorization": f"Bearer {token}"}
    )
    client = Tail(ws)
    try:
        # one heartbeat or replay frame proves the subscription is live
        async def ready():
            return client.frames

        await eventually(ready, within=15)
        yield client
    finally:
        await client.close()


@pytest.fixture
async def tenant_tokens(api: Api) -> tuple[str, dict[str, str]]:
    tenant = await api.tenant("s")
    return tenant, await api.role_tokens(tenant)


async def post(api: Api, token: str, events: list[dict]) -> None:
    resp = await api.http.post("/api/v1/logs/bulk", json=events, headers=bearer(token))
    assert resp.status_code == 202, resp.text


async def test_events_reach_their_tenant_only(api: Api, cfg: StackConfig, tenant_tokens) -> None:
    tenant, tokens = tenant_tokens
    other = await api.tenant("o")
    other_tokens = await api.role_tokens(other)
    async with (
        tail(cfg.gateway_url, tokens["viewer"], tail="0") as mine,
        tail(cfg.gateway_url, other_tokens["viewer"], tail="0") as theirs,
    ):
        await post(api, tokens["writer"], [{"id": "m1", "message": "mine"}])
        await post(api, other_tokens["writer"], [{"id": "t1", "message": "theirs"}])
        await mine.wait_for_ids({"m1"})
        await theirs.wait_for_ids({"t1"})
        assert mine.ids() == ["m1"]
        assert theirs.ids() == ["t1"]
        assert mine.events[0]["tenant_id"] == tenant


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"level": "ERROR"}, {"f2"}),
        ({"min_level": "warning"}, {"f2", "f3"}),
        ({"service": "api"}, {"f1", "f2"}),
        ({"action": "user.login"}, {"f4"}),
        ({"q": "DISK"}, {"f3"}),
        ({"attributes.stage": "build"}, {"f1"}),
    ],
)
async def test_filters_apply_server_side(
    api: Api, cfg: StackConfig, tenant_tokens, params: dict, expected: set[str]
) -> None:
    _, tokens = tenant_tokens
    async with tail(cfg.gateway_url, tokens["viewer"], **params) as client:
        await post(
            api,
            tokens["writer"],
            [
                {"id": "f1", "message": "built", "service": "api", "stage": "build"},
                {"id": "f2", "level": "error", "message": "boom", "service": "api"},
                {"id": "f3", "level": "warn", "message": "disk full", "service": "db"},
                {"id": "f4", "action": "user.login", "service": "auth"},
                {
                    "id": "marker",
                    "message": "end",
                    "service": "marker",
                    "stage": "build",
                    "level": "critical",
                    "action": "user.login",
                },
            ],
        )
        # the marker matches most filters; wait on an unfiltered view of the same batch
        async with tail(cfg.gateway_url, tokens["viewer"], tail="5") as everything:
            await everything.wait_for_ids({"f1", "f2", "f3", "f4", "marker"})
        # give the filtered client the same chance, then compare
        await eventually(lambda: _has_any(client, expected), within=15)
        assert set(client.ids()) - {"marker"} == expected


async def _has_any(client: Tail, expected: set[str]) -> bool:
    return bool(expected & set(client.ids()))


async def test_tail_replay_then_live_without_gap_or_duplicate(
    api: Api, cfg: StackConfig, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    await ingest(
        api.http,
        bearer(tokens["writer"]),
        [{"id": f"old{i}", "message": "stored"} for i in range(10)],
        bearer(tokens["viewer"]),
    )
    stop = asyncio.Event()
    sent: list[str] = []

    async def keep_ingesting() -> None:
        n = 0
        while not stop.is_set() and n < 200:
            batch = [f"new{n}-{j}" for j in range(3)]
            await post(api, tokens["writer"], [{"id": i, "message": "live"} for i in batch])
            sent.extend(batch)
            n += 1

    producer = asyncio.create_task(keep_ingesting())
    try:
        async with tail(cfg.gateway_url, tokens["viewer"], tail="5") as client:
            assert client.frames[0]["type"] == "events" and client.frames[0]["replay"] is True
            assert len(client.frames[0]["data"]) == 5
            await eventually(lambda: _count_at_least(sent, 30), within=30)
            stop.set()
            await producer
            # everything sent after the replay window must arrive, each exactly once
            await client.wait_for_ids(set(sent[-3:]), within=60)
            ids = client.ids()
            assert len(ids) == len(set(ids)), "duplicate at the seam"
            replayed = [e["id"] for e in client.frames[0]["data"]]
            first_live = ids.index(ids[len(replayed)]) if len(ids) > len(replayed) else None
            assert first_live == len(replayed)
            # no gap: every event stored after the newest replayed one was streamed
            newest = replayed[-1]
            after = sent[sent.index(newest) + 1 :] if newest.startswith("new") else sent
            assert set(after) <= set(ids), "gap at the seam"
    finally:
        stop.set()
        await producer


async def _count_at_least(items: list, n: int) -> bool:
    return len(items) >= n


async def test_bad_tokens_roles_and_filters_close_with_codes(
    api: Api, cfg: StackConfig, tenant_tokens
) -> None:
    _, tokens = tenant_tokens

    async def close_code(url: str, **kw) -> tuple[int, dict]:
        async with websockets.connect(url, **kw) as ws:
            frame = orjson.loads(await ws.recv())
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
            return ws.close_code, frame

    code, frame = await close_code(ws_url(cfg.gateway_url))
    assert code == 4401 and frame["type"] == "error"
    # a browser cannot set Authorization on a WebSocket: name the ways it can use
    assert "?token=" in frame["detail"] and "Sec-WebSocket-Protocol" in frame["detail"]
    code, _ = await close_code(ws_url(cfg.gateway_url, token="not-a-jwt"))
    assert code == 4401
    code, _ = await close_code(ws_url(cfg.gateway_url, token=tokens["writer"]))
    assert code == 4403
    code, frame = await close_code(ws_url(cfg.gateway_url, token=tokens["viewer"], bogus="1"))
    assert code == 4422 and frame["errors"][0]["field"] == "bogus"
    code, _ = await close_code(ws_url(cfg.gateway_url, token=tokens["viewer"], tail="5000"))
    assert code == 4422
    code, _ = await close_code(
        ws_url(cfg.gateway_url, token=tokens["viewer"]), additional_headers={"X-Tenant-ID": "x"}
    )
    assert code == 4403
    # the token may also ride in Sec-WebSocket-Protocol (browsers cannot set headers)
    async with websockets.connect(
        ws_url(cfg.gateway_url, tail="0"), subprotocols=["bearer", tokens["viewer"]]
    ) as ws:
        assert ws.subprotocol == "bearer"
        frame = orjson.loads(await ws.recv())
        assert frame["type"] in ("events", "heartbeat")


def _raw_websocket_that_never_reads(port: int, path: str) -> socket.socket:
    """A WebSocket client reduced to its socket: it upgrades, then reads nothing, with a
    tiny TCP window (client libraries keep reading into their own buffers)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


async def test_slow_consumer_is_cut_off_without_delaying_others(
    api: Api, cfg: StackConfig, tenant_tokens
) -> None:
    tenant, tokens = tenant_tokens
    url = ws_url(cfg.service_url("broadcast"), token=tokens["viewer"])  # no proxy buffers
    fast_client = Tail(await websockets.connect(url))
    slow = _raw_websocket_that_never_reads(
        cfg.ports.broadcast, f"/api/v1/logs/stream?token={tokens['viewer']}"
    )
    r = aioredis.from_url(cfg.redis_url)
    try:
        await eventually(lambda: _subscribed(r, tenant), within=15)
        blob = "x" * 100_000
        for i in range(300):  # 30 MB: far beyond the socket buffers and 16 queued frames
            payload = [
                {
                    "id": f"big{i}",
                    "message": blob,
                    "tenant_id": tenant,
                    "timestamp": "2026-11-23T00:00:00.000Z",
                    "level": "INFO",
                }
            ]
            await r.publish(f"logs:{tenant}", orjson.dumps(payload))
            if i % 8 == 7:  # a reader that keeps up is never cut off: pace by its progress
                await fast_client.wait_for_ids({f"big{i}"}, within=30)
        await fast_client.wait_for_ids({f"big{i}" for i in range(300)}, within=60)
        assert not fast_client.task.done(), "the fast client must stay connected"
        # Reading now drains what was buffered, then the notice and the 4408 close frame.
        close_frame = b"\x88\x0a" + (4408).to_bytes(2, "big") + b"too slow"
        received = b""
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(60):
            while close_frame not in received:
                chunk = await loop.sock_recv(slow, 1 << 20)
                if not chunk:
                    break
                received += chunk
        assert b'"code":"slow_consumer"' in received
        assert close_frame in received
        assert received.count(b'"type":"events"') < 300
    finally:
        await fast_client.close()
        slow.close()
        await r.aclose()


async def _subscribed(r: aioredis.Redis, tenant: str) -> bool:
    counts = await r.pubsub_numsub(f"logs:{tenant}")
    return counts[0][1] >= 1


async def test_two_replicas_both_deliver_every_event(
    api: Api, stack: ProcessGroup, cfg: StackConfig, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    base = stack.specs["broadcast"]
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if "broadcast-2" not in stack.specs:
        stack.add(
            ProcSpec(
                "broadcast-2",
                base.argv,
                {**base.env, "LOGSERVER_PORT": str(port)},
                ("http", f"http://127.0.0.1:{port}/healthz"),
            )
        )
    stack.start("broadcast-2")
    try:
        stack.wait(["broadcast-2"], timeout=60)
        async with (
            tail(cfg.service_url("broadcast"), tokens["viewer"]) as one,
            tail(f"http://127.0.0.1:{port}", tokens["viewer"]) as two,
        ):
            ids = [f"rep{i}" for i in range(50)]
            await post(api, tokens["writer"], [{"id": i, "message": "m"} for i in ids])
            await one.wait_for_ids(set(ids))
            await two.wait_for_ids(set(ids))
            assert sorted(one.ids()) == sorted(two.ids()) == sorted(ids)
    finally:
        stack.stop("broadcast-2")


async def test_client_reconnects_after_broadcast_restart(
    api: Api, stack: ProcessGroup, cfg: StackConfig, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    async with tail(cfg.gateway_url, tokens["viewer"]) as before:
        await post(api, tokens["writer"], [{"id": "pre", "message": "m"}])
        await before.wait_for_ids({"pre"})
        stack.restart("broadcast")
        await eventually(lambda: _closed(before), within=15)
    async with tail(cfg.gateway_url, tokens["viewer"], tail="1") as after:
        await post(api, tokens["writer"], [{"id": "post", "message": "m"}])
        await after.wait_for_ids({"post"})


async def _closed(client: Tail) -> bool:
    return client.task.done()


async def test_streaming_resumes_after_redis_restart(
    api: Api, stack: ProcessGroup, cfg: StackConfig, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    async with tail(cfg.gateway_url, tokens["viewer"]) as client:
        await post(api, tokens["writer"], [{"id": "r-before", "message": "m"}])
        await client.wait_for_ids({"r-before"})
        stack.restart("redis")
        n = 0

        async def delivered_again():
            nonlocal n
            n += 1
            await post(api, tokens["writer"], [{"id": f"r-after{n}", "message": "m"}])
            return any(i.startswith("r-after") for i in client.ids())

        await eventually(delivered_again, within=60, every=0.5)
        assert not client.task.done(), "the client connection survived the Redis restart"


async def test_stream_token_in_the_url_is_not_logged(
    stack: ProcessGroup, cfg: StackConfig, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    async with websockets.connect(ws_url(cfg.gateway_url, token=tokens["viewer"])) as ws:
        await ws.recv()
    logs = stack.tail("broadcast", 100_000)
    assert "/api/v1/logs/stream" in logs  # the connection is logged...
    assert tokens["viewer"] not in logs  # ...without its token


async def test_frames_are_not_compressed_per_client_by_default(
    cfg: StackConfig, tenant_tokens
) -> None:
    _, tokens = tenant_tokens
    async with websockets.connect(
        ws_url(cfg.gateway_url, token=tokens["viewer"]), compression="deflate"
    ) as ws:
        assert ws.response is not None
        # offered by the client, declined by the server (LOGSERVER_STREAM_COMPRESSION)
        assert "sec-websocket-extensions" not in ws.response.headers
        assert orjson.loads(await ws.recv())["type"] in ("heartbeat", "events")


async def _first_frame(ws: websockets.ClientConnection, within: float) -> dict:
    async with asyncio.timeout(within):
        return orjson.loads(await ws.recv())


async def test_rapid_reconnects_of_one_tenant_each_stream_at_once(
    api: Api, cfg: StackConfig, tenant_tokens
) -> None:
    """Closing a tenant's last stream and opening a new one at once (a page refresh, a
    restarted `logserver tail`) must not leave the new one waiting for a subscription."""
    _, tokens = tenant_tokens
    url = ws_url(cfg.gateway_url, token=tokens["viewer"], tail="1")
    for cycle in range(20):
        async with websockets.connect(url) as ws:
            # `tail=1` answers with its replay frame as soon as the hub has subscribed
            frame = await _first_frame(ws, within=3)
            assert frame["type"] == "events" and frame["replay"] is True, (cycle, frame)
            if cycle % 5 == 4:  # and it is live: an event ingested now arrives
                await post(api, tokens["writer"], [{"id": f"rc{cycle}", "message": "m"}])
                async with asyncio.timeout(15):
                    while not any(e["id"] == f"rc{cycle}" for e in frame.get("data", [])):
                        frame = orjson.loads(await ws.recv())


async def _closed_with(client: Tail, within: float = 2) -> tuple[int | None, dict]:
    await eventually(lambda: _closed(client), within=within, every=0.05)
    return client.ws.close_code, client.frames[-1]


async def test_stream_of_a_revoked_key_is_closed_at_once(api: Api, cfg: StackConfig) -> None:
    tenant = await api.tenant("s")
    key_id, secret = await api.key(tenant, "viewer")
    token = await api.token(key_id, secret)
    async with tail(cfg.gateway_url, token, tail="1") as client:
        resp = await api.http.delete(
            f"/api/v1/tenants/{tenant}/api-keys/{key_id}", headers=api.admin
        )
        assert resp.status_code == 204
        code, frame = await _closed_with(client)
        assert code == 4401
        assert frame["type"] == "error" and frame["code"] == "unauthorized"
        assert "revoked" in frame["detail"]


async def test_streams_of_a_disabled_tenant_are_closed_at_once(api: Api, cfg: StackConfig) -> None:
    tenant = await api.tenant("s")
    other = await api.tenant("o")
    viewer = await api.token(*await api.key(tenant, "viewer"))
    bystander = await api.token(*await api.key(other, "viewer"))
    admin = api.admin["Authorization"].split()[1]
    async with (
        tail(cfg.gateway_url, viewer, tail="1") as own,
        tail(cfg.gateway_url, admin, tail="1", tenant=tenant) as platform,
        tail(cfg.gateway_url, bystander, tail="1") as unrelated,
    ):
        assert (await api.http.delete(f"/api/v1/tenants/{tenant}", headers=api.admin)).is_success
        code, frame = await _closed_with(own)
        assert code == 4401 and frame["code"] == "unauthorized" and "disabled" in frame["detail"]
        code, frame = await _closed_with(platform)  # as when it connects: unknown or disabled
        assert code == 4404 and frame["code"] == "not_found" and "disabled" in frame["detail"]
        assert not unrelated.task.done(), "another tenant's stream stays open"


async def test_stream_is_closed_when_its_token_expires(api: Api, cfg: StackConfig) -> None:
    from jose import jwt

    from tests.integration.auth.test_tokens import _claims, _signing_key

    tenant = await api.tenant("s")
    key_id, _ = await api.key(tenant, "viewer")
    pem, kid = _signing_key(cfg)
    expires = int(time.time()) + 3
    claims = _claims(sub=key_id, tenant=tenant, role="viewer", exp=expires)
    token = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid})
    async with tail(cfg.gateway_url, token, tail="1") as client:
        code, frame = await _closed_with(client, within=10)
        assert time.time() >= expires
        assert code == 4401 and frame["code"] == "unauthorized" and "expired" in frame["detail"]


async def test_replay_comes_from_the_ring_reaches_past_it_and_survives_its_loss(
    api: Api, cfg: StackConfig, tenant_tokens
) -> None:
    tenant, tokens = tenant_tokens
    base = datetime.now(UTC) - timedelta(minutes=10)
    # 30 events, one second apart; the three errors are among the oldest, so a replay of
    # errors must reach past the ring (20 events in the test stack) into the storage
    events = [
        {
            "id": f"ring{i:02d}",
            "timestamp": (base + timedelta(seconds=i)).isoformat(),
            "level": "error" if i in (1, 4, 7) else "info",
            "message": f"event {i}",
        }
        for i in range(30)
    ]
    await ingest(api.http, bearer(tokens["writer"]), events, bearer(tokens["viewer"]))
    r = aioredis.from_url(cfg.redis_url)
    try:

        async def replay(**params: str) -> list[str]:
            async with tail(cfg.gateway_url, tokens["viewer"], **params) as client:
                return [e["id"] for e in client.frames[0]["data"]]

        async def ring_complete() -> bool:
            return bool(await r.exists(f"recent:{tenant}:ok"))

        # a new tenant's ring is complete from its creation: replays read it
        assert await replay(tail="5") == [f"ring{i:02d}" for i in range(25, 30)]
        await eventually(ring_complete, within=30)
        assert await r.zcard(f"recent:{tenant}") == 20
        # from then on replays read the ring (proof: an entry only the ring has)
        only_in_ring = {"id": "ring99", "timestamp": (base + timedelta(seconds=99)).isoformat()}
        member = orjson.dumps({**only_in_ring, "level": "INFO", "message": "x"})
        await r.zadd(f"recent:{tenant}", {member: (base.timestamp() + 99) * 1000})
        assert await replay(tail="2") == ["ring29", "ring99"]
        await r.zrem(f"recent:{tenant}", member)
        # a filter the ring's 20 cannot satisfy reaches into the storage for the rest
        assert await replay(tail="5", level="error") == ["ring01", "ring04", "ring07"]

        await r.delete(f"recent:{tenant}", f"recent:{tenant}:ok")  # Redis lost it
        assert await replay(tail="3") == ["ring27", "ring28", "ring29"]  # from storage
        await eventually(ring_complete, within=30)  # and is rebuilt
        assert await r.zcard(f"recent:{tenant}") == 20

        resp = await api.http.delete(
            "/api/v1/logs/cleanup",
            params={"before": (base + timedelta(seconds=28)).isoformat(), "level": "info"},
            headers=bearer(tokens["admin"]),
        )
        assert resp.status_code == 200, resp.text
        # deleted events are never replayed
        assert await replay(tail="4") == ["ring04", "ring07", "ring28", "ring29"]
    finally:
        await r.aclose()
