"""Loki push through the gateway, driven by a real Loki client (winston-loki, npm).

The client is installed from scripts/loki-client/package-lock.json into the tool
cache (scripts/provision-loki-client.sh) and sends snappy protobuf or JSON, as
Promtail, Alloy and Fluent Bit's loki output do. Hand-built requests cover the
malformed cases.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import time
from pathlib import Path

import cramjam
import pytest

from services.cli.stack import REPO, StackConfig
from services.log.compression import unsnappy
from services.log.shippers.loki import PushRequest
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import basic, eventually, queue_drained, stored_total

pytestmark = pytest.mark.integration

FIXTURE = REPO / "tests/unit/log/shippers/fixtures/winston-loki-6.1.7-push.snappy-protobuf"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def loki_client() -> Path:
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "provision-loki-client.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Path(out.stdout.strip().splitlines()[-1])


async def push(client: Path, cfg: StackConfig, **options: object) -> dict:
    """Run the client once; what it says happened ({"protocol", "errors"})."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(client / "push.js"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    config = {"host": cfg.gateway_url, **options}
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(config).encode()), 60)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


ENTRIES = [
    {"level": "info", "message": "order placed", "labels": {"order": "o-1"}},
    {"level": "warn", "message": "payment declined", "labels": {"order": "o-2"}},
    {"level": "error", "message": "gateway timeout", "labels": {"order": "o-3"}},
]


@pytest.mark.parametrize("json_mode", [False, True], ids=["snappy-protobuf", "json"])
async def test_a_loki_client_pushes_into_the_keys_tenant(
    api: Api, cfg: StackConfig, loki_client: Path, json_mode: bool
) -> None:
    tenant = await api.tenant("loki")
    key_id, secret = await api.key(tenant, "writer")
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    other = await api.tenant("loki-other")
    other_viewer = bearer(await api.token(*await api.key(other, "viewer")))
    auth = f"{key_id}:{secret}"

    sent = await push(
        loki_client,
        cfg,
        basicAuth=auth,
        json=json_mode,
        labels={"job": "checkout", "env": "prod"},
        headers={"X-Scope-OrgID": tenant},  # its own tenant: allowed
        entries=ENTRIES,
    )
    assert sent == {"protocol": "json" if json_mode else "protobuf", "errors": []}

    async def three():
        return await stored_total(api.http, viewer) == 3

    await eventually(three, within=60)
    assert await stored_total(api.http, viewer, service="checkout") == 3
    assert await stored_total(api.http, viewer, level="WARNING") == 1
    assert await stored_total(api.http, viewer, **{"attributes.order": "o-3"}) == 1
    assert await stored_total(api.http, viewer, **{"attributes.env": "prod"}) == 3
    assert await stored_total(api.http, other_viewer) == 0

    # Another tenant's X-Scope-OrgID, then a wrong secret: refused, nothing stored.
    cross = await push(
        loki_client,
        cfg,
        basicAuth=auth,
        json=json_mode,
        headers={"X-Scope-OrgID": other},
        entries=ENTRIES[:1],
    )
    assert len(cross["errors"]) == 1 and "403" in cross["errors"][0]
    wrong = await push(
        loki_client, cfg, basicAuth=f"{key_id}:wrong", json=json_mode, entries=ENTRIES[:1]
    )
    assert len(wrong["errors"]) == 1 and "401" in wrong["errors"][0]
    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 3
    assert await stored_total(api.http, other_viewer) == 0


async def test_retries_are_stored_once_and_malformed_pushes_store_nothing(
    api: Api, cfg: StackConfig
) -> None:
    tenant = await api.tenant("loki-raw")
    writer = basic(*await api.key(tenant, "writer"))
    viewer = bearer(await api.token(*await api.key(tenant, "viewer")))
    url = "/loki/api/v1/push"

    # The real client's push (tests/unit/log/shippers/fixtures), its entries moved to now
    # (an old one could be past the tenant's retention), sent twice as a retry would be:
    # Loki keeps one of identical entries, so do we.
    request = PushRequest.FromString(unsnappy(FIXTURE.read_bytes(), 1 << 20))
    now = time.time_ns()
    for i, entry in enumerate(e for s in request.streams for e in s.entries):
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(now + i, 1_000_000_000)
    recorded = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    for _ in range(2):
        resp = await api.http.post(url, content=recorded, headers=writer | PROTOBUF)
        assert resp.status_code == 204, resp.text

    bomb = bytes(cramjam.snappy.compress_raw(b"\0" * (11 * 1024 * 1024)))
    gzip_bomb = gzip.compress(b" " * (11 * 1024 * 1024))
    lines = [[str(1_767_225_600_000_000_000 + i), "m"] for i in range(10_001)]
    oversized = json.dumps({"streams": [{"stream": {"job": "x"}, "values": lines}]}).encode()
    json_type = {"Content-Type": "application/json"}
    for content, headers, status in (
        (b"not snappy", PROTOBUF, 400),
        (bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff garbage")), PROTOBUF, 400),
        (bomb, PROTOBUF, 413),
        (b'{"streams": 1}', json_type, 400),
        (b"not gzip", json_type | {"Content-Encoding": "gzip"}, 400),
        (gzip_bomb, json_type | {"Content-Encoding": "gzip"}, 413),
        (oversized, json_type, 413),
    ):
        resp = await api.http.post(url, content=content, headers=writer | headers)
        assert resp.status_code == status, (status, resp.text)

    await queue_drained(cfg)
    assert await stored_total(api.http, viewer) == 3
    assert await stored_total(api.http, viewer, service="checkout") == 3
