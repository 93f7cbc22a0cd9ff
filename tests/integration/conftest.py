"""Integration fixtures: one real stack per test session, on free ports.

The stack is the same process list `make dev` runs (backends, five services,
nginx gateway), started in the background under `.data/test-<pid>/`, so a
running `make dev` is never disturbed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.cli.admin import AsyncAdminClient
from services.cli.stack import REPO, Ports, ProcessGroup, StackConfig, build_stack, provision

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack() -> Iterator[ProcessGroup]:
    data_dir = REPO / ".data" / f"test-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    tools = provision()
    admin = (f"admin_{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    cfg = build_stack(
        data_dir,
        Ports.free(),
        tools,
        admin=admin,
        # Short visibility so redelivery tests do not wait 30 s.
        visibility_timeout=2,
        extra_env={
            # Long, as in production: credential changes must reach every service through
            # their invalidation, not because a short cache happened to expire.
            "LOGSERVER_CREDENTIAL_CACHE_SECONDS": "300",
            "LOGSERVER_LOG_LEVEL": "INFO",
            "LOGSERVER_ACCESS_LOG": "all",  # the redaction tests read every request line
            "LOGSERVER_RETENTION_INTERVAL_SECONDS": "5",
            # A killed worker's uncounted batches are recovered within seconds, not minutes.
            "LOGSERVER_ROLLUP_LEASE_SECONDS": "15",
            "LOGSERVER_ROLLUP_INTERVAL_SECONDS": "2",
            "LOGSERVER_QUERY_COUNT_LIMIT": "1000",
            "LOGSERVER_RECENT_EVENTS": "20",  # small: replays also reach past the ring
            "LOGSERVER_DEAD_LETTER_POLL_SECONDS": "1",
            "LOGSERVER_STREAM_BUFFER_FRAMES": "16",
            "LOGSERVER_STREAM_HEARTBEAT_SECONDS": "2",
            "LOGSERVER_STREAM_SLOW_GRACE_SECONDS": "60",
        },
    )
    group = ProcessGroup(cfg)
    try:
        group.start_all(timeout=240)
    except Exception as exc:
        logs = "\n".join(f"--- {n}\n{group.tail(n)}" for n in group.specs)
        raise RuntimeError(f"stack did not start: {exc}\n{logs}") from exc
    yield group
    group.stop_all()
    if os.environ.get("LOGSERVER_KEEP_TEST_DATA") != "1":
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cfg(stack: ProcessGroup) -> StackConfig:
    return stack.cfg


@pytest.fixture
async def gateway(cfg: StackConfig) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cfg.gateway_url, timeout=30) as client:
        yield client


# The name the tests import: the admin client the `logserver` command and the benchmark use.
Api = AsyncAdminClient


@pytest.fixture(scope="session")
async def admin_token(cfg: StackConfig) -> str:
    async with httpx.AsyncClient(base_url=cfg.gateway_url, timeout=30) as http:
        return await AsyncAdminClient(http).token(cfg.admin_client_id, cfg.admin_client_secret)


@pytest.fixture
async def api(gateway: httpx.AsyncClient, admin_token: str) -> Api:
    """The admin flows tests need (tenants, keys, tokens), as the CLI and benchmark run them."""
    return Api(gateway, admin_token)


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}
