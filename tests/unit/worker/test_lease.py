"""The Redis lease against a fake Redis that keeps the two Lua scripts' contract
(compare the holder, then pexpire / del) and a clock the test moves."""

from __future__ import annotations

from typing import Any

import pytest

from services.worker.lease import RELEASE, RENEW, Lease, holder_id


class FakeRedis:
    def __init__(self) -> None:
        self.now_ms = 0
        self.data: dict[str, tuple[str, int]] = {}  # key -> (value, expires at ms)

    def _get(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or value[1] <= self.now_ms:
            self.data.pop(key, None)
            return None
        return value[0]

    async def set(self, key: str, value: str, *, nx: bool = False, px: int | None = None) -> Any:
        assert nx and px, "a lease is always SET NX PX"
        if self._get(key) is not None:
            return None
        self.data[key] = (value, self.now_ms + px)
        return True

    async def eval(self, script: str, numkeys: int, key: str, holder: str, *args: Any) -> int:
        assert numkeys == 1
        if self._get(key) != holder:
            return 0
        if script == RENEW:
            self.data[key] = (holder, self.now_ms + int(args[0]))
            return 1
        assert script == RELEASE
        del self.data[key]
        return 1


@pytest.fixture
def redis() -> FakeRedis:
    return FakeRedis()


def lease(redis: FakeRedis, holder: str, ttl: float = 10) -> Lease:
    return Lease(redis, "logserver:retention-lease:db", holder, ttl)


async def test_one_holder_at_a_time(redis: FakeRedis) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    assert await a.acquire()
    assert not await b.acquire()
    assert not await a.acquire()  # not re-entrant either: the lease marks a period


async def test_it_expires_after_its_ttl_and_then_anyone_may_take_it(redis: FakeRedis) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    await a.acquire()
    redis.now_ms = 9_999
    assert not await b.acquire()
    redis.now_ms = 10_000
    assert await b.acquire()
    assert not await a.renew()  # a lost it: renewing must tell


async def test_renew_extends_by_the_full_ttl(redis: FakeRedis) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    await a.acquire()
    redis.now_ms = 8_000
    assert await a.renew()
    redis.now_ms = 17_999
    assert not await b.acquire()
    assert not await b.renew()  # another holder cannot extend it
    assert await a.renew(60)
    redis.now_ms = 17_999 + 59_000
    assert not await b.acquire()


async def test_only_the_holder_releases(redis: FakeRedis) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    await a.acquire()
    await b.release()
    assert not await b.acquire()
    await a.release()
    assert await b.acquire()


def test_holder_ids_differ_per_process_start() -> None:
    assert holder_id() != holder_id()
    assert holder_id().count(":") == 2
