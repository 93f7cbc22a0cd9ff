"""Secret hashing and the cached live status of a token's API key and tenant."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from services.core import credentials
from services.core.credentials import (
    CredentialStatus,
    hash_secret,
    new_key_id,
    new_secret,
    secret_matches,
)
from services.core.errors import Unauthorized, Unavailable
from services.core.principal import Principal

# --- secrets -----------------------------------------------------------------------


def test_hash_secret_is_sha256_hex() -> None:
    assert hash_secret("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert hash_secret("s3cret") == hashlib.sha256(b"s3cret").hexdigest()


def test_hash_secret_does_not_contain_the_secret() -> None:
    secret = new_secret()
    assert secret not in hash_secret(secret)


def test_secret_matches() -> None:
    stored = hash_secret("correct horse")
    assert secret_matches("correct horse", stored)
    assert not secret_matches("correct horsE", stored)
    assert not secret_matches("", stored)
    assert not secret_matches("correct horse", stored.upper())


def test_new_key_ids_and_secrets_are_random() -> None:
    ids = {new_key_id() for _ in range(50)}
    secrets = {new_secret() for _ in range(50)}
    assert len(ids) == 50 and len(secrets) == 50
    assert all(re.fullmatch(r"lsk_[0-9a-f]{24}", i) for i in ids)
    assert all(len(s) >= 40 for s in secrets)  # 32 random bytes, url-safe base64


# --- CredentialStatus --------------------------------------------------------------


class FakeCollection:
    """Just enough of an async MongoDB collection: ``find_one`` by ``_id``."""

    def __init__(self, docs: dict[str, dict[str, Any]] | None = None) -> None:
        self.docs = docs or {}
        self.calls = 0
        self.error: Exception | None = None

    async def find_one(self, flt: dict[str, Any], projection: Any = None) -> dict | None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        doc = self.docs.get(flt["_id"])
        return dict(doc) if doc is not None else None


class FakeDb(dict):
    def __init__(self) -> None:
        super().__init__(
            api_keys=FakeCollection(
                {
                    "lsk_acme": {"tenant": "acme", "revoked_at": None},
                    "lsk_revoked": {"tenant": "acme", "revoked_at": "2026-01-01T00:00:00Z"},
                    "lsk_off": {"tenant": "off", "revoked_at": None},
                    "lsk_ghost": {"tenant": "ghost", "revoked_at": None},
                    "lsk_admin": {"tenant": "*", "revoked_at": None},
                }
            ),
            tenants=FakeCollection({"acme": {"status": "active"}, "off": {"status": "disabled"}}),
        )

    @property
    def api_keys(self) -> FakeCollection:
        return self["api_keys"]

    @property
    def tenants(self) -> FakeCollection:
        return self["tenants"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(credentials, "time", clock)
    return clock


@pytest.fixture
def db() -> FakeDb:
    return FakeDb()


@pytest.fixture
def status(db: FakeDb, clock: Clock) -> CredentialStatus:
    return CredentialStatus(db, ttl_seconds=30)  # type: ignore[arg-type]


def principal(sub: str, tenant: str, role: str = "viewer") -> Principal:
    return Principal(sub=sub, tenant_claim=tenant, role=role, jti="j", expires_at=2**31)


async def test_active_key_of_active_tenant_passes(status: CredentialStatus, db: FakeDb) -> None:
    await status.ensure_active(principal("lsk_acme", "acme"))
    assert db.api_keys.calls == 1
    assert db.tenants.calls == 1


async def test_platform_key_does_not_look_up_a_tenant(status: CredentialStatus, db: FakeDb) -> None:
    await status.ensure_active(principal("lsk_admin", "*", "admin"))
    assert db.tenants.calls == 0


@pytest.mark.parametrize(
    ("sub", "tenant", "message"),
    [
        ("lsk_revoked", "acme", "revoked"),
        ("lsk_unknown", "acme", "revoked"),  # deleted key
        ("lsk_acme", "other", "revoked"),  # key does not belong to the token's tenant
        ("lsk_off", "off", "disabled"),
        ("lsk_ghost", "ghost", "disabled"),  # tenant document gone
    ],
)
async def test_inactive_credentials_are_unauthorized(
    status: CredentialStatus, sub: str, tenant: str, message: str
) -> None:
    with pytest.raises(Unauthorized) as info:
        await status.ensure_active(principal(sub, tenant))
    assert message in info.value.detail
    assert info.value.status == 401


async def test_status_is_cached_within_ttl_and_refreshed_after(
    status: CredentialStatus, db: FakeDb, clock: Clock
) -> None:
    p = principal("lsk_acme", "acme")
    await status.ensure_active(p)
    db.api_keys.docs["lsk_acme"]["revoked_at"] = "now"  # revoked behind the cache's back
    clock.now += 29.9
    await status.ensure_active(p)  # still the cached answer
    assert db.api_keys.calls == 1
    clock.now += 0.1  # ttl reached
    with pytest.raises(Unauthorized):
        await status.ensure_active(p)
    assert db.api_keys.calls == 2


async def test_cache_is_per_key_and_tenant(status: CredentialStatus, db: FakeDb) -> None:
    await status.ensure_active(principal("lsk_acme", "acme"))
    with pytest.raises(Unauthorized):
        await status.ensure_active(principal("lsk_acme", "other"))
    assert db.api_keys.calls == 2


async def test_negative_answer_is_cached_too(status: CredentialStatus, db: FakeDb) -> None:
    p = principal("lsk_revoked", "acme")
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await status.ensure_active(p)
    assert db.api_keys.calls == 1


async def test_lookup_error_without_cached_status_is_unavailable(
    status: CredentialStatus, db: FakeDb
) -> None:
    db.api_keys.error = ConnectionError("mongo down")
    with pytest.raises(Unavailable) as info:
        await status.ensure_active(principal("lsk_acme", "acme"))
    assert info.value.status == 503
    assert "Retry-After" in info.value.headers


async def test_lookup_error_keeps_last_good_answer(
    status: CredentialStatus, db: FakeDb, clock: Clock
) -> None:
    p = principal("lsk_acme", "acme")
    await status.ensure_active(p)
    db.api_keys.error = ConnectionError("mongo down")
    clock.now += 31
    await status.ensure_active(p)  # no exception: the cached "active" answer is kept
    assert db.api_keys.calls == 2  # but it did try again


async def test_lookup_error_keeps_last_bad_answer(
    status: CredentialStatus, db: FakeDb, clock: Clock
) -> None:
    p = principal("lsk_revoked", "acme")
    with pytest.raises(Unauthorized):
        await status.ensure_active(p)
    db.api_keys.error = ConnectionError("mongo down")
    clock.now += 31
    with pytest.raises(Unauthorized):
        await status.ensure_active(p)


async def test_tenant_lookup_error_is_unavailable(status: CredentialStatus, db: FakeDb) -> None:
    db.tenants.error = TimeoutError("slow")
    with pytest.raises(Unavailable):
        await status.ensure_active(principal("lsk_acme", "acme"))
