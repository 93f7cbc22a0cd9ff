"""SlotLeases: granted, refused, given back; granted unchecked when Redis is away."""

from __future__ import annotations

import asyncio
from typing import Any

from services.core.limitstore import StoreGuard
from services.core.slots import SlotLeases


class FakeScript:
    def __init__(self, reply: list[int] | None = None, error: Exception | None = None) -> None:
        self.reply, self.error = reply, error
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, keys: list[str], args: list[Any], client: Any = None) -> list[int]:
        self.calls.append({"keys": keys, "args": args})
        if self.error is not None:
            raise self.error
        assert self.reply is not None
        return self.reply


class FakeRedis:
    def __init__(self, acquire: FakeScript) -> None:
        self.scripts = [acquire, FakeScript([1])]
        self.removed: list[tuple[str, str]] = []

    def register_script(self, source: str) -> FakeScript:
        return self.scripts.pop(0)

    async def zrem(self, key: str, member: str) -> int:
        self.removed.append((key, member))
        return 1


def leases(script: FakeScript) -> tuple[SlotLeases, FakeRedis]:
    client = FakeRedis(script)
    return SlotLeases(
        client, "queries", StoreGuard("test"), reason="max_concurrent_queries"
    ), client  # type: ignore[arg-type]


async def test_a_granted_lease_is_held_then_given_back() -> None:
    script = FakeScript([1, 3])
    slots, client = leases(script)
    lease = await slots.acquire("acme", 4)
    assert lease is not None and lease.counted and lease.held == 3
    assert script.calls[0]["keys"][0] == "logserver:slots:{acme}:queries"
    assert (
        script.calls[0]["args"][1] == 4 and script.calls[0]["args"][3] == "max_concurrent_queries"
    )
    assert slots.held_here("acme") == 1
    slots.release(lease)
    slots.release(lease)  # twice is harmless
    assert slots.held_here("acme") == 0
    await asyncio.sleep(0)
    await slots.close()
    assert client.removed == [("logserver:slots:{acme}:queries", lease.member)]


async def test_at_the_limit_there_is_no_lease() -> None:
    slots, _ = leases(FakeScript([0, 4]))
    assert await slots.acquire("acme", 4) is None
    assert slots.held_here("acme") == 0


async def test_redis_away_grants_an_unchecked_lease() -> None:
    slots, client = leases(FakeScript(error=ConnectionError("down")))
    lease = await slots.acquire("acme", 1)
    assert lease is not None and not lease.counted
    slots.release(lease)  # nothing to give back
    await slots.close()
    assert client.removed == []
    no_redis = SlotLeases(None, "tails", StoreGuard("test"), reason="max_concurrent_tails")
    assert (await no_redis.acquire("acme", 1)).counted is False  # type: ignore[union-attr]
