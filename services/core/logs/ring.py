"""Each tenant's most recent events in Redis, for `tail=N` replays without the storage.

``recent:{tenant}`` is a sorted set: score = the event's timestamp in epoch
milliseconds, member = the event in API shape (the worker serializes it the same
way every time, so adding an event twice keeps one copy). The worker adds the
events it newly stored in the pipeline of its PUBLISH and trims the set to the
``size`` latest timestamps. A sorted set rather than a list: events arrive out of
timestamp order (producers' clocks, redelivery), and a replay wants the latest by
timestamp.

``recent:{tenant}:ok`` says the ring is *complete*: it holds every stored event
of the tenant whose timestamp is above the ring's lowest (all of them when it
holds fewer than ``size``). Anything that may break that removes the marker —
a delete (cleanup), an event the worker could not add (Redis error), a
redelivered batch (its events may have been stored by a worker that died before
adding them) — and Redis losing its data loses the marker with it. Without the
marker a replay reads the storage and the ring is rebuilt from the storage
(:func:`rebuild`). ``recent:{tenant}:gen`` is bumped by each invalidation, so a
rebuild that read the storage before a delete cannot mark its ring complete.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as redis
from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from services.core.logs.filters import LogFilter
from services.core.logs.model import LOGS, document_to_api, parse_iso

log = logging.getLogger(__name__)

# KEYS: ring, ok, gen; ARGV: generation read before the storage, size, then score/member pairs
_REBUILD = """
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('SET', KEYS[2], '1')
return 1
"""


def ring_key(tenant_id: str) -> str:
    return f"recent:{tenant_id}"


def ok_key(tenant_id: str) -> str:
    return f"recent:{tenant_id}:ok"


def gen_key(tenant_id: str) -> str:
    return f"recent:{tenant_id}:gen"


def score(event: dict[str, Any]) -> int:
    return int(parse_iso(event["timestamp"]).timestamp() * 1000)


def add(pipe: Any, tenant_id: str, members: list[tuple[bytes, int]], size: int) -> None:
    """Queue the adds of ``members`` (encoded event, score) and the trim on ``pipe``."""
    if members:
        pipe.zadd(ring_key(tenant_id), {m: s for m, s in members})
        pipe.zremrangebyrank(ring_key(tenant_id), 0, -(size + 1))


def invalidate(pipe: Any, tenant_id: str) -> None:
    """Queue what makes the tenant's ring untrusted until rebuilt."""
    pipe.incr(gen_key(tenant_id))
    pipe.delete(ok_key(tenant_id), ring_key(tenant_id))


async def start_empty(client: redis.Redis, tenant_id: str) -> None:
    """A new tenant has no events: its (empty) ring is complete from the start, so its
    first replays need no rebuild from the storage."""
    await client.set(ok_key(tenant_id), "1", nx=True)


async def invalidate_now(client: redis.Redis, tenant_id: str) -> None:
    async with client.pipeline(transaction=True) as pipe:
        invalidate(pipe, tenant_id)
        await pipe.execute()


def _key(event: dict[str, Any]) -> tuple[str, str]:
    return event["timestamp"], event["id"]


async def read(
    client: redis.Redis, tenant_id: str, flt: LogFilter, n: int, size: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | None:
    """The last ``n`` matching events the ring holds (oldest first), and, when the
    storage may hold more of them, the query for what lies below the ring (else
    None). None when the ring is not complete."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(ok_key(tenant_id))
        pipe.zrange(ring_key(tenant_id), 0, -1, withscores=True)
        ok, entries = await pipe.execute()
    if not ok:
        return None
    events = [orjson.loads(m) for m, _ in entries]
    # A rebuild racing the worker may hold an event twice (equal content, other bytes).
    unique = {e["id"]: e for e in events if flt.matches(e)}
    matching = sorted(unique.values(), key=_key)[-n:] if n else []
    if len(matching) >= n or len(entries) < size or not entries:
        return matching, None
    # The ring is full: older matching events may be in the storage only.
    lowest = entries[0][1]
    at_lowest = [e["id"] for (_, s), e in zip(entries, events, strict=True) if s == lowest]
    ts = datetime.fromtimestamp(lowest / 1000, tz=UTC)
    below = {"$or": [{"timestamp": {"$lt": ts}}, {"timestamp": ts, "id": {"$nin": at_lowest}}]}
    return matching, below


async def from_storage(
    db: AsyncDatabase,
    tenant_id: str,
    flt: LogFilter,
    n: int,
    *,
    below: dict[str, Any] | None = None,
    max_time_ms: int | None = None,
) -> list[dict[str, Any]]:
    """The last ``n`` matching stored events (below the ring's lowest if given), oldest first."""
    query = flt.to_mongo(tenant_id)
    if below is not None:
        query = {"$and": [query, below]}
    kwargs = {"max_time_ms": max_time_ms} if max_time_ms else {}
    cursor = (
        db[LOGS]
        .find(query, **kwargs)
        .sort([("timestamp", DESCENDING), ("id", DESCENDING)])
        .limit(n)
    )
    docs = await cursor.to_list()
    return [document_to_api(d) for d in reversed(docs)]


async def replay(
    client: redis.Redis,
    db: AsyncDatabase,
    tenant_id: str,
    flt: LogFilter,
    n: int,
    *,
    size: int,
    max_time_ms: int | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """The last ``n`` matching events, oldest first; and whether the ring was complete
    (if not, the caller should have it rebuilt)."""
    try:
        got = await read(client, tenant_id, flt, n, size)
    except redis.RedisError as exc:  # the ring is a cache: the storage still answers
        log.warning("ring read failed; replaying from storage", extra={"error": str(exc)[:300]})
        return await from_storage(db, tenant_id, flt, n, max_time_ms=max_time_ms), True
    if got is None:
        return await from_storage(db, tenant_id, flt, n, max_time_ms=max_time_ms), False
    matching, below = got
    if below is not None:
        older = await from_storage(
            db, tenant_id, flt, n - len(matching), below=below, max_time_ms=max_time_ms
        )
        matching = older + matching
    return matching, True


async def rebuild(
    client: redis.Redis,
    db: AsyncDatabase,
    tenant_id: str,
    size: int,
    max_time_ms: int | None = None,
) -> bool:
    """Refill the ring with the ``size`` latest stored events and mark it complete,
    unless an invalidation came in between. True if it was marked complete."""
    gen = (await client.get(gen_key(tenant_id))) or b"0"
    events = await from_storage(db, tenant_id, LogFilter(), size, max_time_ms=max_time_ms)
    args: list[Any] = [gen, size]
    for e in events:
        args += [score(e), orjson.dumps(e)]
    keys = (ring_key(tenant_id), ok_key(tenant_id), gen_key(tenant_id))
    done = await client.eval(_REBUILD, 3, *keys, *args)
    return bool(done)


class Rebuilds:
    """At most one rebuild per tenant at a time in this process, in the background."""

    def __init__(
        self, client: redis.Redis, db: AsyncDatabase, size: int, max_time_ms: int | None
    ) -> None:
        self.client = client
        self.db = db
        self.size = size
        self.max_time_ms = max_time_ms
        self._running: dict[str, asyncio.Task[None]] = {}

    def start(self, tenant_id: str) -> None:
        if tenant_id not in self._running:
            self._running[tenant_id] = asyncio.create_task(self._run(tenant_id))

    async def _run(self, tenant_id: str) -> None:
        try:
            await rebuild(self.client, self.db, tenant_id, self.size, self.max_time_ms)
        except Exception as exc:  # the next replay that finds it incomplete tries again
            log.warning("ring rebuild failed", extra={"tenant": tenant_id, "error": str(exc)[:300]})
        finally:
            self._running.pop(tenant_id, None)

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
