"""The bootstrap platform admin is created once: a restart of auth never resets it.

Runs its own auth process on a database of its own, with its own bootstrap
credential, so the session's admin (used by every other test) is untouched.
There is no HTTP API for platform credentials, so revoking and rotating are
done the way an operator does them: on the record in MongoDB.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.cli.stack import ProcessGroup, StackConfig
from services.core.credentials import API_KEYS, hash_secret
from tests.integration.helpers import eventually, start_replica

pytestmark = pytest.mark.integration


async def _token_status(url: str, client_id: str, secret: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        resp = await http.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        return resp.status_code


async def _bootstrapped(url: str) -> None:
    """Wait until the start-up step that bootstraps the admin has run."""

    async def done():
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            checks = (await http.get("/readyz")).json().get("checks", {})
            return checks.get("startup") == "ok"

    await eventually(done, within=60)


@pytest.fixture
async def own_db(cfg: StackConfig) -> AsyncIterator[tuple[str, AsyncMongoClient]]:
    name = f"boot_{secrets.token_hex(4)}"
    client = AsyncMongoClient(cfg.mongodb_url, serverSelectionTimeoutMS=20000, tz_aware=True)
    try:
        yield name, client
    finally:
        await client.drop_database(name)
        await client.close()


async def test_revoked_or_rotated_bootstrap_admin_survives_an_auth_restart(
    stack: ProcessGroup, cfg: StackConfig, own_db: tuple[str, AsyncMongoClient]
) -> None:
    db_name, mongo = own_db
    keys = mongo[db_name][API_KEYS]
    client_id, secret = f"boot_{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    name = f"auth-{client_id}"
    url = start_replica(
        stack,
        name,
        "auth",
        {
            "LOGSERVER_MONGODB_DATABASE": db_name,
            "LOGSERVER_JWT_KEYS_DIR": str(cfg.data_dir / f"jwt-keys-{client_id}"),
            "LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_ID": client_id,
            "LOGSERVER_BOOTSTRAP_ADMIN_CLIENT_SECRET": secret,
        },
    )
    try:
        await _bootstrapped(url)
        doc = await keys.find_one({"_id": client_id})
        assert doc is not None
        assert (doc["tenant"], doc["role"], doc["revoked_at"]) == ("*", "admin", None)
        assert await _token_status(url, client_id, secret) == 200

        await keys.update_one({"_id": client_id}, {"$set": {"revoked_at": datetime.now(UTC)}})
        assert await _token_status(url, client_id, secret) == 401

        stack.restart(name, timeout=90)
        await _bootstrapped(url)
        assert await _token_status(url, client_id, secret) == 401
        assert (await keys.find_one({"_id": client_id}))["revoked_at"] is not None

        # Rotated (and re-enabled) by the operator: the settings' secret stays dead.
        rotated = secrets.token_urlsafe(24)
        await keys.update_one(
            {"_id": client_id},
            {"$set": {"revoked_at": None, "secret_hash": hash_secret(rotated)}},
        )
        stack.restart(name, timeout=90)
        await _bootstrapped(url)
        assert await _token_status(url, client_id, rotated) == 200
        assert await _token_status(url, client_id, secret) == 401
    finally:
        stack.stop(name)
