"""The shared key schedule and the refresh of one replica's ring, against an in-memory
collection (the real one is MongoDB; tests/integration/auth/test_rotation.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from services.auth.keys import KeyRing
from services.auth.rotation import SIGNING_KEYS, KeyKeeper, KeySchedule
from services.auth.settings import AuthSettings

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ACTIVATION = timedelta(minutes=10)


class FakeCursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    async def to_list(self) -> list[dict[str, Any]]:
        return self.docs


class FakeCollection:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("MongoDB is away")

    async def insert_one(self, doc: dict[str, Any]) -> None:
        self._check()
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("E11000 duplicate key")
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    async def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> None:
        self._check()
        doc = self.docs.get(query["_id"])
        if doc is not None:
            doc.update(update["$set"])

    def find(self, query: dict[str, Any]) -> FakeCursor:
        self._check()
        assert query == {}
        return FakeCursor([copy.deepcopy(d) for d in self.docs.values()])


class FakeDb(dict):
    def __missing__(self, name: str) -> FakeCollection:
        self[name] = FakeCollection()
        return self[name]


@pytest.fixture
def db() -> FakeDb:
    return FakeDb()


def schedule(db: FakeDb) -> KeySchedule:
    return KeySchedule(db, activation=ACTIVATION)  # type: ignore[arg-type]


async def test_first_sight_schedules_the_key_after_the_activation_delay(
    db: FakeDb, pem_a: bytes
) -> None:
    ring = KeyRing.from_pems([pem_a])
    await schedule(db).sync(ring, now=T0)
    (doc,) = db[SIGNING_KEYS].docs.values()
    assert doc["_id"] == ring.keys[0].kid
    assert doc["published_at"] == T0
    assert doc["signs_from"] == T0 + ACTIVATION
    assert set(doc["jwk"]) == {"kty", "n", "e", "kid", "use", "alg"}  # public half only
    assert ring.schedule[doc["_id"]].signs_from == T0 + ACTIVATION
    # the only key signs before its time: there is nothing else
    assert ring.signing_at(T0).kid == doc["_id"]
    assert doc["signed_until"] == T0


async def test_a_later_replica_keeps_the_first_replicas_times(
    db: FakeDb, pem_a: bytes, pem_b: bytes
) -> None:
    first = KeyRing.from_pems([pem_a, pem_b])
    await schedule(db).sync(first, now=T0)
    later = KeyRing.from_pems([pem_a, pem_b])
    await schedule(db).sync(later, now=T0 + timedelta(minutes=3))
    assert {k: v.signs_from for k, v in later.schedule.items()} == {
        k: v.signs_from for k, v in first.schedule.items()
    }


async def test_rotation_across_two_replicas_publishes_before_signing(
    db: FakeDb, pem_a: bytes, pem_b: bytes
) -> None:
    """Replica A gets the new key file first, replica B minutes later: B publishes
    the new key from the schedule meanwhile, and neither signs with it early."""
    a = KeyRing.from_pems([pem_a])
    b = KeyRing.from_pems([pem_a])
    old = a.keys[0].kid
    await schedule(db).sync(a, now=T0 - timedelta(days=1))
    await schedule(db).sync(b, now=T0 - timedelta(days=1))

    a.replace_keys(KeyRing.from_pems([pem_a, pem_b]).keys)
    new = a.keys[1].kid
    await schedule(db).sync(a, now=T0)
    await schedule(db).sync(b, now=T0 + timedelta(seconds=15))
    for ring in (a, b):
        assert new in {k["kid"] for k in ring.published(T0 + timedelta(seconds=15))}
        assert ring.signing_at(T0 + ACTIVATION - timedelta(seconds=1)).kid == old
    assert a.signing_at(T0 + ACTIVATION).kid == new
    assert b.signing_at(T0 + ACTIVATION).kid == old  # no file, no signing: old stays valid


async def test_the_key_in_use_is_noted_so_it_stays_published(
    db: FakeDb, pem_a: bytes, pem_b: bytes
) -> None:
    ring = KeyRing.from_pems([pem_a, pem_b], retain=timedelta(hours=1))
    old, new = (k.kid for k in ring.keys)
    await schedule(db).sync(ring, now=T0)
    later = T0 + ACTIVATION + timedelta(minutes=1)
    await schedule(db).sync(ring, now=later)
    # at `later` the new key was due: the old one's last use is the sync before
    assert db[SIGNING_KEYS].docs[old]["signed_until"] == T0
    assert db[SIGNING_KEYS].docs[new]["signed_until"] == later


async def test_keeper_loads_new_files_and_survives_an_unreachable_schedule(
    db: FakeDb, tmp_path: Path, pem_a: bytes, pem_b: bytes
) -> None:
    (tmp_path / "key-1.pem").write_bytes(pem_a)
    ring = KeyRing.load(tmp_path, generate=False)
    keeper = KeyKeeper(ring, tmp_path, schedule(db))
    await keeper.refresh()
    assert len(db[SIGNING_KEYS].docs) == 1

    db[SIGNING_KEYS].down = True
    (tmp_path / "key-2.pem").write_bytes(pem_b)
    await keeper.refresh()
    assert [k.name for k in ring.keys] == ["key-1.pem", "key-2.pem"]
    assert len(ring.published(datetime.now(UTC))) == 2  # published at once
    assert ring.signing.name == "key-1.pem"  # but not signing: not even scheduled

    db[SIGNING_KEYS].down = False
    await keeper.refresh()
    assert len(db[SIGNING_KEYS].docs) == 2
    assert ring.signing.name == "key-1.pem"


async def test_keeper_keeps_its_keys_when_the_directory_reads_empty(
    db: FakeDb, tmp_path: Path, pem_a: bytes
) -> None:
    (tmp_path / "key-1.pem").write_bytes(pem_a)
    ring = KeyRing.load(tmp_path, generate=False)
    (tmp_path / "key-1.pem").unlink()
    await KeyKeeper(ring, tmp_path, schedule(db)).refresh()
    assert [k.name for k in ring.keys] == ["key-1.pem"]


def test_activation_must_outlast_what_verifiers_need_to_see_a_key() -> None:
    with pytest.raises(ValueError, match="jwt_key_activation_seconds"):
        AuthSettings(
            jwt_key_activation_seconds=60, jwt_keys_sync_seconds=15, jwks_max_age_seconds=300
        )
    ok = AuthSettings(jwt_key_activation_seconds=6, jwt_keys_sync_seconds=1, jwks_max_age_seconds=0)
    assert ok.key_retention == timedelta(seconds=ok.token_ttl_seconds + ok.jwt_leeway_seconds + 1)
    assert AuthSettings().jwt_key_activation_seconds >= 15 + 300 + 5


async def test_keeper_is_ready_once_the_schedule_was_tried(
    db: FakeDb, tmp_path: Path, pem_a: bytes
) -> None:
    (tmp_path / "key-1.pem").write_bytes(pem_a)
    keeper = KeyKeeper(KeyRing.load(tmp_path, generate=False), tmp_path, schedule(db))
    with pytest.raises(RuntimeError, match="schedule"):
        await keeper.probe()
    db[SIGNING_KEYS].down = True  # tried and failed: ready with its own files
    await keeper.refresh()
    await keeper.probe()
