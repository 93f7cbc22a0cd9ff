"""Secret hashing and the cached live status of a token's API key and tenant."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

import pytest

from services.core.credentials import (
    CredentialStatus,
    hash_secret,
    new_key_id,
    new_secret,
    secret_matches,
)
from services.core.errors import NotFound, Unauthorized, Unavailable
from services.core.invalidation import Invalidation
from services.core.principal import Principal
from tests.support.fakes import FakeClock

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
        self.gate: asyncio.Event | None = None  # set: answers wait for it (after reading)

    async def find_one(self, flt: dict[str, Any], projection: Any = None) -> dict | None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        doc = self.docs.get(flt["_id"])
        answer = dict(doc) if doc is not None else None  # read now...
        if self.gate is not None:
            await self.gate.wait()  # ...answered later, as a query in flight is
        return answer


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


@pytest.fixture
def db() -> FakeDb:
    return FakeDb()


@pytest.fixture
def status(db: FakeDb, clock: FakeClock) -> CredentialStatus:
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
    status: CredentialStatus, db: FakeDb, clock: FakeClock
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
    status: CredentialStatus, db: FakeDb, clock: FakeClock
) -> None:
    p = principal("lsk_acme", "acme")
    await status.ensure_active(p)
    db.api_keys.error = ConnectionError("mongo down")
    clock.now += 31
    await status.ensure_active(p)  # no exception: the cached "active" answer is kept
    assert db.api_keys.calls == 2  # but it did try again


async def test_lookup_error_keeps_last_bad_answer(
    status: CredentialStatus, db: FakeDb, clock: FakeClock
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


# --- invalidation ------------------------------------------------------------------


async def settle() -> None:
    """Let started tasks run up to their next real wait (no I/O involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_invalidated_key_is_looked_up_again_at_once(
    status: CredentialStatus, db: FakeDb
) -> None:
    p = principal("lsk_acme", "acme")
    await status.ensure_active(p)
    db.api_keys.docs["lsk_acme"]["revoked_at"] = "now"
    status.invalidate(Invalidation("acme", "lsk_acme"))
    with pytest.raises(Unauthorized):
        await status.ensure_active(p)


@pytest.mark.parametrize(
    ("change", "lookups"),
    [
        (Invalidation("acme", "lsk_other"), 2),  # another key: both answers stay cached
        (Invalidation(), 4),  # everything: both are looked up again
    ],
)
async def test_what_an_invalidation_drops(
    status: CredentialStatus, db: FakeDb, change: Invalidation, lookups: int
) -> None:
    await status.ensure_active(principal("lsk_acme", "acme"))
    await status.ensure_active(principal("lsk_admin", "*", "admin"))
    status.invalidate(change)
    await status.ensure_active(principal("lsk_acme", "acme"))
    await status.ensure_active(principal("lsk_admin", "*", "admin"))
    assert db.api_keys.calls == lookups


async def test_tenant_invalidation_drops_its_keys_and_its_own_status(
    status: CredentialStatus, db: FakeDb
) -> None:
    await status.ensure_active(principal("lsk_acme", "acme"))
    await status.ensure_active(principal("lsk_admin", "*", "admin"))
    await status.ensure_tenant("acme")
    db.tenants.docs["acme"]["status"] = "disabled"
    status.invalidate(Invalidation("acme"))
    with pytest.raises(Unauthorized, match="disabled"):
        await status.ensure_active(principal("lsk_acme", "acme"))
    with pytest.raises(NotFound, match="disabled"):
        await status.ensure_tenant("acme")
    await status.ensure_active(principal("lsk_admin", "*", "admin"))  # other tenant: cached
    assert db.api_keys.calls == 3


async def test_re_enabled_tenant_and_created_tenant_work_at_once(
    status: CredentialStatus, db: FakeDb
) -> None:
    with pytest.raises(Unauthorized):
        await status.ensure_active(principal("lsk_off", "off"))
    with pytest.raises(NotFound):
        await status.ensure_tenant("new")  # the negative answer is cached too
    db.tenants.docs["off"]["status"] = "active"
    db.tenants.docs["new"] = {"status": "active"}
    status.invalidate(Invalidation("off"))
    status.invalidate(Invalidation("new"))
    await status.ensure_active(principal("lsk_off", "off"))
    await status.ensure_tenant("new")


async def test_lookup_in_flight_during_an_invalidation_is_not_cached(
    status: CredentialStatus, db: FakeDb
) -> None:
    """A lookup that read MongoDB before the write must not put its stale answer back
    into the cache after the invalidation."""
    p = principal("lsk_acme", "acme")
    db.api_keys.gate = gate = asyncio.Event()
    before = asyncio.ensure_future(status.ensure_active(p))
    await settle()  # it has read "active" and waits for its answer
    assert db.api_keys.calls == 1
    db.api_keys.docs["lsk_acme"]["revoked_at"] = "now"  # the write...
    status.invalidate(Invalidation("acme", "lsk_acme"))  # ...and its announcement
    gate.set()
    await before  # asked before the change: may still pass
    db.api_keys.gate = None
    with pytest.raises(Unauthorized):
        await status.ensure_active(p)  # the stale "active" was not cached
    assert db.api_keys.calls == 2


async def test_callers_after_an_invalidation_do_not_join_a_lookup_in_flight(
    status: CredentialStatus, db: FakeDb
) -> None:
    p = principal("lsk_acme", "acme")
    db.api_keys.gate = gate = asyncio.Event()
    before = asyncio.ensure_future(status.ensure_active(p))
    await settle()
    db.api_keys.docs["lsk_acme"]["revoked_at"] = "now"
    status.invalidate(Invalidation("acme", "lsk_acme"))
    after = asyncio.ensure_future(status.ensure_active(p))
    await settle()
    assert db.api_keys.calls == 2  # its own lookup, not the one in flight
    gate.set()
    await before
    with pytest.raises(Unauthorized):
        await after


async def test_lookup_error_after_an_invalidation_does_not_fall_back_to_the_old_answer(
    status: CredentialStatus, db: FakeDb, clock: FakeClock
) -> None:
    p = principal("lsk_acme", "acme")
    await status.ensure_active(p)
    status.invalidate(Invalidation("acme", "lsk_acme"))
    db.api_keys.error = ConnectionError("mongo down")
    with pytest.raises(Unavailable):
        await status.ensure_active(p)
