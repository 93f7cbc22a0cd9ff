"""The `logserver` command as a person runs it: a subprocess against the test stack."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.cli.stack import REPO, ProcessGroup, StackConfig
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import eventually

pytestmark = pytest.mark.integration

CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("LOGSERVER_URL", "LOGSERVER_CLIENT_ID", "LOGSERVER_CLIENT_SECRET")
}


def logserver(*args: str, cwd: Path = REPO, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env=CLEAN_ENV | {"PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def checkout_with_dev_admin(tmp_path: Path, cfg: StackConfig) -> Path:
    """A source tree where `make dev` has saved its platform-admin credential."""
    checkout = tmp_path / "checkout"
    shutil.copytree(
        REPO / "services", checkout / "services", ignore=shutil.ignore_patterns("__pycache__")
    )
    (checkout / ".data").mkdir()
    (checkout / ".data" / "admin-credentials.json").write_text(
        json.dumps({"client_id": cfg.admin_client_id, "client_secret": cfg.admin_client_secret})
    )
    return checkout


def test_token_with_a_client_id_but_no_secret_refuses(
    cfg: StackConfig, checkout_with_dev_admin: Path
) -> None:
    # The dev admin credential is there: without arguments it is what `token` uses ...
    admin = logserver("token", "--url", cfg.gateway_url, cwd=checkout_with_dev_admin)
    assert admin.returncode == 0, admin.stderr
    assert admin.stdout.count(".") == 2  # a JWT
    # ... but naming a client id without its secret must not fall back to it.
    result = logserver(
        "token", "--client-id", "lsk_someone", "--url", cfg.gateway_url, cwd=checkout_with_dev_admin
    )
    assert result.returncode != 0
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "--client-secret" in line and "LOGSERVER_CLIENT_SECRET" in line


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", ["token", "tail"])
def test_an_unreachable_url_is_one_line_and_a_failure(command: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = logserver(command, "--url", url, "--client-id", "a", "--client-secret", "b")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"logserver: cannot reach {url}: connection refused"]


def test_admin_tail_without_tenant_names_the_flag(cfg: StackConfig) -> None:
    result = logserver(
        "tail",
        "--url",
        cfg.gateway_url,
        "--client-id",
        cfg.admin_client_id,
        "--client-secret",
        cfg.admin_client_secret,
        timeout=30,
    )
    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert "--tenant" in line
    assert "X-Tenant-ID" not in line


async def test_tail_reconnects_after_the_broadcast_service_restarts(
    api: Api, cfg: StackConfig, stack: ProcessGroup
) -> None:
    tenant = await api.tenant("cli", retention_days=3650)
    viewer_id, viewer_secret = await api.key(tenant, "viewer")
    writer = bearer(await api.token(*await api.key(tenant, "writer")))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "tail",
        "--json",
        "--tail",  # the first connection replays what was stored before it subscribed
        "100",
        "--url",
        cfg.gateway_url,
        "--client-id",
        viewer_id,
        "--client-secret",
        viewer_secret,
        cwd=REPO,
        env=CLEAN_ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out: list[str] = []
    err: list[str] = []

    async def collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
        async for line in stream:
            lines.append(line.decode())

    readers = [
        asyncio.create_task(collect(proc.stdout, out)),
        asyncio.create_task(collect(proc.stderr, err)),
    ]

    def printed_ids() -> list[str]:
        return [json.loads(line)["id"] for line in out]

    async def send(event_id: str) -> None:
        resp = await api.http.post(
            "/api/v1/logs", json={"id": event_id, "message": event_id}, headers=writer
        )
        assert resp.status_code == 202, resp.text

    # Each wait is for a state, with a deadline sized for a loaded machine (the CLI's start,
    # the pipeline and the broadcast's restart each take seconds there), never a guess.
    def printed(event_id: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            assert proc.returncode is None, "".join(err)
            return event_id in printed_ids()

        return check

    async def said(text: str) -> bool:
        return any(text in line for line in err)

    try:
        # Printed whether it is stored before the CLI subscribes (its tail=100 replay) or
        # after (live): one event, no resending until the CLI happens to be connected.
        await send("before")
        await eventually(printed("before"), within=180)
        await asyncio.to_thread(stack.restart, "broadcast", 180)
        await send("after-restart")
        await eventually(printed("after-restart"), within=180)
        await eventually(lambda: said("reconnected"), within=30)  # stderr has its own pipe
        counts = Counter(printed_ids())
        assert counts == {"before": 1, "after-restart": 1}, counts  # nothing printed twice
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in readers:
            task.cancel()
