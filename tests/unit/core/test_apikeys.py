"""API keys sent directly (Basic / ApiKey): parsing, checking, caching, invalidation."""

from __future__ import annotations

import asyncio
import base64

import pytest

from services.core import apikeys
from services.core.apikeys import ApiKeyAuthenticator, MachineCredential, machine_credential
from services.core.credentials import hash_secret
from services.core.errors import BadRequest, Forbidden, Unauthorized, Unavailable
from services.core.invalidation import Invalidation
from tests.support.fakes import FakeClock
from tests.unit.core.test_credentials import FakeCollection


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Basic {b64('lsk_1:s3cret')}", MachineCredential("lsk_1", "s3cret")),
        (f"basic   {b64('lsk_1:s3:cr:et')}", MachineCredential("lsk_1", "s3:cr:et")),
        (f"ApiKey {b64('lsk_1:s3cret')}", MachineCredential("lsk_1", "s3cret")),
        (f"APIKEY {b64('lsk_1:s3cret')}", MachineCredential("lsk_1", "s3cret")),
        ("Bearer abc.def", None),
        (None, None),
        ("", None),
    ],
)
def test_machine_credential(header, expected):
    assert machine_credential(header) == expected


@pytest.mark.parametrize("header", ["Basic !!!", "ApiKey not_base64$", f"Basic {b64('é')[:-1]}"])
def test_malformed_base64_is_400(header):
    with pytest.raises(BadRequest):
        machine_credential(header)


@pytest.mark.parametrize("text", ["no-colon", ":secret", "lsk_1:", ""])
def test_missing_id_or_secret_is_401(text):
    with pytest.raises(Unauthorized):
        machine_credential(f"Basic {b64(text)}")


# --- the authenticator ---------------------------------------------------------------

KEYS = {
    "lsk_writer": {"tenant": "acme", "role": "writer", "secret_hash": hash_secret("w-secret")},
    "lsk_viewer": {"tenant": "acme", "role": "viewer", "secret_hash": hash_secret("v-secret")},
    "lsk_revoked": {
        "tenant": "acme",
        "role": "writer",
        "secret_hash": hash_secret("r-secret"),
        "revoked_at": "2026-01-01T00:00:00Z",
    },
    "lsk_off": {"tenant": "off", "role": "writer", "secret_hash": hash_secret("o-secret")},
    "lsk_admin": {"tenant": "*", "role": "admin", "secret_hash": hash_secret("a-secret")},
}


class Db(dict):
    def __init__(self) -> None:
        super().__init__(
            api_keys=FakeCollection({k: dict(v) for k, v in KEYS.items()}),
            tenants=FakeCollection({"acme": {"status": "active"}, "off": {"status": "disabled"}}),
        )


@pytest.fixture
def db() -> Db:
    return Db()


@pytest.fixture
def auth(db: Db, clock: FakeClock) -> ApiKeyAuthenticator:
    return ApiKeyAuthenticator(db, ttl_seconds=30)  # type: ignore[arg-type]


async def test_a_writer_key_is_its_tenants_principal(auth):
    p = await auth.authenticate(MachineCredential("lsk_writer", "w-secret"))
    assert (p.sub, p.tenant_claim, p.role) == ("lsk_writer", "acme", "writer")
    assert p.acting_on(None).tenant == "acme"


async def test_a_platform_admin_key_must_name_its_tenant(auth):
    p = await auth.authenticate(MachineCredential("lsk_admin", "a-secret"))
    assert p.is_platform_admin and p.acting_on(None).tenant is None
    assert p.acting_on("acme").tenant == "acme"


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        ("lsk_writer", "wrong"),
        ("lsk_writer", "w-secreT"),
        ("lsk_nobody", "w-secret"),
        ("lsk_revoked", "r-secret"),
        ("lsk_off", "o-secret"),
    ],
)
async def test_every_failure_is_the_same_401(auth, client_id, secret):
    with pytest.raises(Unauthorized) as info:
        await auth.authenticate(MachineCredential(client_id, secret))
    assert info.value.detail == apikeys.INVALID_KEY
    assert "Basic" in info.value.headers["WWW-Authenticate"]


async def test_a_key_that_may_not_write_is_403(auth):
    with pytest.raises(Forbidden, match="'viewer' role may not ingest"):
        await auth.authenticate(MachineCredential("lsk_viewer", "v-secret"))


async def test_answers_are_cached_for_the_ttl(auth, db, clock):
    right = MachineCredential("lsk_writer", "w-secret")
    for _ in range(5):
        await auth.authenticate(right)
    assert db["api_keys"].calls == 1
    clock.now += 31
    await auth.authenticate(right)
    assert db["api_keys"].calls == 2


async def test_a_wrong_secret_is_never_served_from_a_valid_answer(auth, db):
    await auth.authenticate(MachineCredential("lsk_writer", "w-secret"))
    for _ in range(3):
        with pytest.raises(Unauthorized):
            await auth.authenticate(MachineCredential("lsk_writer", "guess"))
    assert db["api_keys"].calls == 2  # the refusal is cached too, under its own secret
    await auth.authenticate(MachineCredential("lsk_writer", "w-secret"))  # still valid


async def test_revocation_announced_takes_effect_at_once(auth, db):
    right = MachineCredential("lsk_writer", "w-secret")
    await auth.authenticate(right)
    db["api_keys"].docs["lsk_writer"]["revoked_at"] = "2026-02-01T00:00:00Z"
    await auth.authenticate(right)  # cached: the change was not announced yet
    auth.invalidate(Invalidation("acme", "lsk_writer"))
    with pytest.raises(Unauthorized):
        await auth.authenticate(right)


async def test_a_disabled_tenant_announced_takes_effect_at_once(auth, db):
    right = MachineCredential("lsk_writer", "w-secret")
    await auth.authenticate(right)
    db["tenants"].docs["acme"]["status"] = "disabled"
    auth.invalidate(Invalidation("other"))
    await auth.authenticate(right)  # another tenant's change keeps this answer
    auth.invalidate(Invalidation("acme"))
    with pytest.raises(Unauthorized):
        await auth.authenticate(right)


async def test_a_key_created_after_a_refusal_works_once_announced(auth, db):
    late = MachineCredential("lsk_late", "l-secret")
    with pytest.raises(Unauthorized):
        await auth.authenticate(late)
    db["api_keys"].docs["lsk_late"] = {
        "tenant": "acme",
        "role": "writer",
        "secret_hash": hash_secret("l-secret"),
    }
    auth.invalidate(Invalidation())  # e.g. a resubscription: everything may have changed
    assert (await auth.authenticate(late)).sub == "lsk_late"


async def test_concurrent_requests_share_one_lookup(auth, db):
    db["api_keys"].gate = asyncio.Event()
    right = MachineCredential("lsk_writer", "w-secret")
    calls = [asyncio.ensure_future(auth.authenticate(right)) for _ in range(20)]
    await asyncio.sleep(0)
    db["api_keys"].gate.set()
    principals = await asyncio.gather(*calls)
    assert {p.sub for p in principals} == {"lsk_writer"}
    assert db["api_keys"].calls == 1


async def test_an_answer_read_before_an_invalidation_is_not_cached(auth, db):
    db["api_keys"].gate = asyncio.Event()
    right = MachineCredential("lsk_writer", "w-secret")
    first = asyncio.ensure_future(auth.authenticate(right))
    for _ in range(5):  # a few loop turns: the shared lookup runs in a task of its own
        await asyncio.sleep(0)
    assert db["api_keys"].calls == 1  # the lookup has read the key, still valid
    db["api_keys"].docs["lsk_writer"]["revoked_at"] = "now"
    auth.invalidate(Invalidation("acme", "lsk_writer"))
    db["api_keys"].gate.set()
    await first  # it started before the revocation: allowed, but not remembered
    db["api_keys"].gate = None
    with pytest.raises(Unauthorized):
        await auth.authenticate(right)


async def test_storage_down_keeps_the_last_answer_or_is_503(auth, db, clock):
    right = MachineCredential("lsk_writer", "w-secret")
    await auth.authenticate(right)
    db["api_keys"].error = ConnectionError("mongo down")
    clock.now += 31
    assert (await auth.authenticate(right)).sub == "lsk_writer"
    with pytest.raises(Unavailable):
        await auth.authenticate(MachineCredential("lsk_admin", "a-secret"))
