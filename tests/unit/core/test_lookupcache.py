import asyncio

import pytest

from services.core.lookupcache import LookupCache
from tests.support.fakes import FakeClock


class Storage:
    def __init__(self) -> None:
        self.reads = 0
        self.down = False

    async def read(self, value: str = "answer") -> str:
        self.reads += 1
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("storage away")
        return value


def refuse(exc: Exception) -> str:
    raise RuntimeError("unavailable") from exc


async def test_an_answer_is_fresh_for_the_ttl(clock: FakeClock) -> None:
    cache: LookupCache[str, str] = LookupCache(10, "test")
    storage = Storage()
    assert await cache.get("k", storage.read, refuse) == "answer"
    clock.advance(9.9)
    assert cache.fresh("k") is not None
    assert await cache.get("k", storage.read, refuse) == "answer"
    assert storage.reads == 1
    clock.advance(0.2)
    assert cache.fresh("k") is None
    await cache.get("k", storage.read, refuse)
    assert storage.reads == 2


async def test_the_last_answer_stands_while_the_storage_is_away(clock: FakeClock) -> None:
    cache: LookupCache[str, str] = LookupCache(10, "test")
    storage = Storage()
    await cache.get("k", storage.read, refuse)
    clock.advance(11)
    storage.down = True
    assert await cache.get("k", storage.read, refuse) == "answer"
    assert await cache.get("k", storage.read, refuse) == "answer"
    assert storage.reads == 2  # not asked again before the TTL passes


async def test_without_an_answer_the_fallback_decides_and_a_default_is_kept(
    clock: FakeClock,
) -> None:
    cache: LookupCache[str, str] = LookupCache(10, "test")
    storage = Storage()
    storage.down = True
    with pytest.raises(RuntimeError):
        await cache.get("k", storage.read, refuse)
    assert cache.fresh("k") is None  # a refusal is not cached
    assert await cache.get("k", storage.read, lambda exc: "default") == "default"
    assert await cache.get("k", storage.read, refuse) == "default"
    assert storage.reads == 2


async def test_drop_forgets_only_what_is_stale_and_a_lookup_begun_before_is_not_kept(
    clock: FakeClock,
) -> None:
    cache: LookupCache[str, str] = LookupCache(10, "test")
    storage = Storage()
    await cache.get("a", storage.read, refuse)
    await cache.get("b", storage.read, refuse)
    in_flight = asyncio.ensure_future(cache.get("c", storage.read, refuse))
    await asyncio.sleep(0)  # the lookup of c has begun
    cache.drop(lambda key, _value: key == "a")
    assert await in_flight == "answer"
    assert cache.fresh("a") is None and cache.fresh("b") is not None
    assert cache.fresh("c") is None  # read before the change: maybe stale


async def test_a_full_cache_starts_over(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LookupCache, "MAX_ENTRIES", 2)
    cache: LookupCache[str, str] = LookupCache(10, "test")
    storage = Storage()
    for key in ("a", "b", "c"):
        await cache.get(key, storage.read, refuse)
    assert [cache.fresh(k) is not None for k in ("a", "b", "c")] == [False, False, True]
