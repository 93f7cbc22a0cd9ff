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
        extra_env={"LOGSERVER_CREDENTIAL_CACHE_SECONDS": "1", "LOGSERVER_LOG_LEVEL": "WARNING"},
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
