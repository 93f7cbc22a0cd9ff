"""Where limits keep their counts: Redis, shared by every replica; and what happens
when Redis does not answer (limits fail open).

Keys (the tenant in a ``{hash tag}``, so one tenant's keys share a Redis Cluster slot
and a script may touch several of them):

- ``logserver:limits:{<tenant>}:ingest`` — the ingest token buckets and the current
  rate (hash; see ``services/log/admission.py``), expires when idle;
- ``logserver:usage:{<tenant>}:<YYYYMMDD>`` — the UTC day's ``events`` and ``bytes``
  ingested and ``refused:<reason>`` counts (hash), kept two days;
- ``logserver:slots:{<tenant>}:<kind>`` — what the tenant holds open now, ``queries``
  or ``tails`` (sorted set of leases; see :mod:`services.core.slots`).

Limits must never stop the service they protect: when Redis is unreachable or slow,
:class:`StoreGuard` lets the request through, counts it in
``logserver_limits_unenforced_total`` and logs a warning (at most every 10 s), and
does not ask Redis again for a second, so a lost Redis costs at most one request a
second a timeout (10 s, for a Redis that hangs; a refused connection fails at once).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis.asyncio as redis

from services.core.metrics import LIMITS_UNENFORCED, REFUSED

T = TypeVar("T")
log = logging.getLogger(__name__)

USAGE_TTL_SECONDS = 2 * 86400  # today's and yesterday's usage
RATE_WINDOW_SECONDS = 10.0  # the current rate is an exponential average over about this long
# Longest a limit check waits for Redis before letting a request by: long, because the
# wait includes the event loop's lag, and an overloaded log service (a flood is when
# limits matter) lags by seconds: with 0.5 s and then 2 s, a benchmark flood made most
# checks time out and pass unchecked. A Redis that refuses connections fails at once.
STORE_TIMEOUT_SECONDS = 10.0
STORE_PAUSE_SECONDS = 1.0  # after a failure, Redis is not asked again for this long
WARN_EVERY_SECONDS = 10.0
# Connections of the limits' own Redis client. Every ingest request and query asks
# Redis once: with the shared client's pool (100, then "Too many connections" at once)
# a burst of concurrent requests made most checks fail, and so pass unchecked. This
# pool makes the 65th concurrent check wait for a connection instead.
STORE_CONNECTIONS = 64


def limits_client(url: str) -> redis.Redis:
    """The Redis client limit checks use (a blocking pool: wait for a connection)."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=STORE_CONNECTIONS,
        timeout=STORE_TIMEOUT_SECONDS,
        socket_connect_timeout=2,
        health_check_interval=15,
    )
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


def bucket_key(tenant: str) -> str:
    return f"logserver:limits:{{{tenant}}}:ingest"


def usage_key(tenant: str, day: str) -> str:
    return f"logserver:usage:{{{tenant}}}:{day}"


def slots_key(tenant: str, kind: str) -> str:
    return f"logserver:slots:{{{tenant}}}:{kind}"


def utc_day(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%d")


def seconds_to_midnight(now: datetime | None = None) -> int:
    """Whole seconds until the next UTC day (when a daily quota starts over), ≥ 1."""
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((midnight - now).total_seconds()))


class StoreGuard:
    """Runs limit checks against Redis with a short timeout; on any failure returns
    the caller's fail-open answer instead of raising."""

    def __init__(
        self,
        service: str,
        *,
        timeout: float = STORE_TIMEOUT_SECONDS,
        pause: float = STORE_PAUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.timeout = timeout
        self.pause = pause
        self.clock = clock
        self._paused_until = 0.0
        self._warned_at = -math.inf

    @property
    def available(self) -> bool:
        return self.clock() >= self._paused_until

    async def run(self, check: str, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``await call()``, or ``fallback`` if Redis failed (now or within the pause)."""
        if not self.available:
            LIMITS_UNENFORCED.labels(self.service, check).inc()
            return fallback
        try:
            return await asyncio.wait_for(call(), self.timeout)
        except Exception as exc:  # connection refused, timeout, script error: fail open
            self.failed(check, exc)
            return fallback

    def failed(self, check: str, exc: BaseException) -> None:
        now = self.clock()
        self._paused_until = now + self.pause
        LIMITS_UNENFORCED.labels(self.service, check).inc()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "limits not enforced: their store (Redis) did not answer; requests pass "
                "unchecked until it does",
                extra={"check": check, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )


def count_refusal(tenant: str, reason: str) -> None:
    REFUSED.labels(tenant, reason).inc()


async def record_refusal(
    client: redis.Redis | None, guard: StoreGuard, tenant: str, reason: str
) -> None:
    """Count a refusal in the metrics and in the tenant's usage of the day (best effort)."""
    count_refusal(tenant, reason)
    if client is None:
        return

    async def incr() -> None:
        key = usage_key(tenant, utc_day())
        async with client.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, f"refused:{reason}", 1)
            pipe.expire(key, USAGE_TTL_SECONDS)
            await pipe.execute()

    await guard.run("refusal_count", incr, None)


def _decayed(value: Any, since: Any, now: float) -> float:
    try:
        rate, then = float(value), float(since)
    except (TypeError, ValueError):
        return 0.0
    return rate * math.exp(-max(0.0, now - then) / RATE_WINDOW_SECONDS)


async def read_usage(client: redis.Redis, tenant: str) -> dict[str, Any]:
    """The tenant's usage as ``GET /api/v1/logs/usage`` shows it (one round trip).

    Raises whatever Redis raises: the caller decides what an unreachable store means.
    """
    day = utc_day()
    async with client.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.hgetall(usage_key(tenant, day))
        pipe.hmget(bucket_key(tenant), ["rate", "brate", "ts"])
        for kind in ("queries", "tails"):
            pipe.zcount(slots_key(tenant, kind), "(" + str(time.time()), "+inf")
        server_time, counts, bucket, queries, tails = await pipe.execute()
    now = server_time[0] + server_time[1] / 1e6
    fields = {
        (k.decode() if isinstance(k, bytes) else k): int(v) for k, v in (counts or {}).items()
    }
    refused = {k.removeprefix("refused:"): v for k, v in fields.items() if k.startswith("refused:")}
    rate, brate, since = bucket
    return {
        "day": f"{day[:4]}-{day[4:6]}-{day[6:]}",
        "ingested": {"events": fields.get("events", 0), "bytes": fields.get("bytes", 0)},
        "rate": {
            "events_per_second": round(_decayed(rate, since, now), 1),
            "bytes_per_second": round(_decayed(brate, since, now), 1),
            "window_seconds": RATE_WINDOW_SECONDS,
        },
        "refused": dict(sorted(refused.items())),
        "running_queries": int(queries),
        "open_tails": int(tails),
    }
