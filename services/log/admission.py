"""Ingest admission: is a tenant within its ingest limits? One step for every ingest path.

:class:`IngestAdmission` is what :meth:`IngestBatcher.submit` asks first, so our own
``POST /logs[/bulk]`` and every shipper endpoint (all of which hand their events to
the batcher) are limited alike, before anything is queued. One request is one
decision, all or nothing: its events and bytes are taken from the tenant's token
buckets together, or the request is refused (``429``, ``Retry-After``) and nothing
of it is queued.

The buckets live in Redis (:mod:`services.core.limitstore`), shared by every log
service replica, and one Lua script (``EVALSHA``) decides: refill both buckets for
the time since the tenant's last request, check events, bytes and the daily quota,
then either take the tokens and add the request to the day's usage, or count the
refusal.

One round trip per tenant at a time, not per request: a tenant's requests that arrive
while its previous call is in flight wait and are decided together by the next call
(at most :data:`MAX_BATCH`), each on its own and in arrival order, exactly as separate
calls would decide them (one refused request does not refuse the next, smaller one).
Under load this is one ``EVALSHA`` for dozens of requests (a call per request was
about a third of the log service's CPU per single-event request); a lone request
still gets its own call at once, so nothing waits for a timer.

A request larger than a bucket is let through when the bucket is full and leaves
it in debt (negative), which the refill pays back before the next request passes:
the long-run rate holds, and no request is refused forever for its size alone.

After a rate refusal this process refuses the tenant's next requests itself until the
refusal's wait has passed (:meth:`IngestAdmission.precheck`; our own
ingest routes ask before they even read the body): a flooding tenant costs neither
a Redis round trip nor the parsing of what would be refused anyway.

Redis unreachable: the request passes unchecked (limits fail open; see
``StoreGuard``). Ingest must not stop because the limiter's store is away.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as redis

from services.core.errors import RateLimited
from services.core.limits import Limits
from services.core.limitstore import (
    RATE_WINDOW_SECONDS,
    USAGE_TTL_SECONDS,
    StoreGuard,
    bucket_key,
    count_refusal,
    record_refusal,
    seconds_to_midnight,
    usage_key,
    utc_day,
)
from services.core.metrics import LIMIT_UTILISATION, LIMITS_UNENFORCED

log = logging.getLogger(__name__)

# KEYS: bucket, usage of the day.
# ARGV: events, bytes (of the first request), events/s, events capacity, bytes/s, bytes
#       capacity, daily quota, usage TTL, seconds to midnight, rate window; then the
#       events and bytes of every further request of the batch (ARGV[11], ARGV[12], ...).
# Returns, per request in order, {1, '', '0', rate, byte rate} or {0, refused limit,
# seconds to wait, rate, byte rate}, flattened (5 values a request); numbers as strings
# (Redis would truncate Lua numbers to integers). Each request is decided on its own,
# in order, exactly as separate calls would decide them: one refused request does not
# refuse the next, smaller one.
ADMIT = """
local ev_rate, ev_cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local by_rate, by_cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local daily, usage_ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local to_midnight, window = tonumber(ARGV[9]), tonumber(ARGV[10])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local b = redis.call('HMGET', KEYS[1], 'ev', 'by', 'ts', 'rate', 'brate')
local elapsed = math.max(0, now - (tonumber(b[3]) or now))
local ev = tonumber(b[1]) or ev_cap
local by = tonumber(b[2]) or by_cap
if ev_rate > 0 then ev = math.min(ev_cap, ev + elapsed * ev_rate) end
if by_rate > 0 then by = math.min(by_cap, by + elapsed * by_rate) end
local decay = math.exp(-elapsed / window)
local rate = (tonumber(b[4]) or 0) * decay
local brate = (tonumber(b[5]) or 0) * decay
local fmt = '%.3f'
local starts = {1}
for i = 11, #ARGV - 1, 2 do starts[#starts + 1] = i end
local used = nil  -- the day's usage before this batch, read once if a quota asks
local took, took_n, took_size = 0, 0, 0  -- admitted requests, their events and bytes
local refused = {}
local out = {}
for _, i in ipairs(starts) do
  local n, size = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local reason, wait = nil, 0
  if ev_rate > 0 and ev < math.min(n, ev_cap) then
    reason, wait = 'ingest_events_per_second', (math.min(n, ev_cap) - ev) / ev_rate
  end
  if by_rate > 0 and by < math.min(size, by_cap) then
    local w = (math.min(size, by_cap) - by) / by_rate
    if reason == nil or w > wait then reason, wait = 'ingest_bytes_per_second', w end
  end
  if reason == nil and daily > 0 then
    if used == nil then used = tonumber(redis.call('HGET', KEYS[2], 'events') or '0') end
    if used + took_n + n > daily then reason, wait = 'daily_events', to_midnight end
  end
  if reason then
    refused[reason] = (refused[reason] or 0) + 1
    out[#out + 1] = 0
    out[#out + 1] = reason
    out[#out + 1] = string.format(fmt, wait)
  else
    if ev_rate > 0 then ev = ev - n end
    if by_rate > 0 then by = by - size end
    rate = rate + n / window
    brate = brate + size / window
    took, took_n, took_size = took + 1, took_n + n, took_size + size
    out[#out + 1] = 1
    out[#out + 1] = ''
    out[#out + 1] = '0'
  end
  out[#out + 1] = string.format(fmt, rate)
  out[#out + 1] = string.format(fmt, brate)
end
local counted = false
for reason, count in pairs(refused) do
  redis.call('HINCRBY', KEYS[2], 'refused:' .. reason, count)
  counted = true
end
if took > 0 then
  local idle = 60
  if ev_rate > 0 then idle = math.max(idle, ev_cap / ev_rate + 60) end
  if by_rate > 0 then idle = math.max(idle, by_cap / by_rate + 60) end
  redis.call('HSET', KEYS[1], 'ev', string.format(fmt, ev), 'by', string.format(fmt, by),
    'ts', string.format('%.6f', now), 'rate', string.format(fmt, rate),
    'brate', string.format(fmt, brate))
  redis.call('EXPIRE', KEYS[1], math.ceil(idle))
  redis.call('HINCRBY', KEYS[2], 'events', took_n)
  redis.call('HINCRBY', KEYS[2], 'bytes', took_size)
  counted = true
end
if counted then redis.call('EXPIRE', KEYS[2], usage_ttl) end
return out
"""

# KEYS: usage of the day. ARGV: events, bytes. Takes back what a request added to the
# day's usage when it was admitted but then not queued (the queue refused it).
REFUND = """
redis.call('HINCRBY', KEYS[1], 'events', -tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[1], 'bytes', -tonumber(ARGV[2]))
return 1
"""

MAX_COOLING = 10_000  # tenants remembered as refused; beyond that the memory starts over
# Most requests one script call decides: bounds the time the script holds Redis (each
# request costs it a few arithmetic operations) and the size of its arguments.
MAX_BATCH = 500

# A tenant's effective limits: ``TenantPolicies.limits`` (services/core/tenantpolicy.py).
LimitsSource = Callable[[str], Awaitable[Limits]]

SLUGS = {
    "ingest_events_per_second": "ingest-rate-limited",
    "ingest_bytes_per_second": "ingest-rate-limited",
    "daily_events": "daily-quota-exceeded",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the script answered for one request."""

    admitted: bool
    limit: str = ""  # the limit that refused it
    wait_seconds: float = 0.0  # until the same request can pass
    rate: float = 0.0  # the tenant's current events/s (exponential average)
    byte_rate: float = 0.0

    @classmethod
    def from_reply(cls, reply: list[bytes | str | int]) -> Decision:
        """The decision of a one-request call (the first of a batch's)."""
        return cls.from_replies(reply)[0]

    @classmethod
    def from_replies(cls, reply: list[bytes | str | int]) -> list[Decision]:
        """The decision of each request of one call, in order (5 values a request)."""

        def text(value: bytes | str | int) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        return [
            cls(
                admitted=int(reply[i]) == 1,
                limit=text(reply[i + 1]),
                wait_seconds=float(text(reply[i + 2])),
                rate=float(text(reply[i + 3])),
                byte_rate=float(text(reply[i + 4])),
            )
            for i in range(0, len(reply), 5)
        ]


def script_args(limits: Limits, events: int, size: int) -> list[int | float]:
    """ARGV of :data:`ADMIT` for one request under ``limits``."""
    return [
        events,
        size,
        limits.ingest_events_per_second,
        limits.event_capacity,
        limits.ingest_bytes_per_second,
        limits.byte_capacity,
        limits.daily_events,
        USAGE_TTL_SECONDS,
        seconds_to_midnight(),
        RATE_WINDOW_SECONDS,
    ]


def batch_args(limits: Limits, requests: list[tuple[int, int]]) -> list[int | float]:
    """ARGV of :data:`ADMIT` for the ``(events, bytes)`` of several requests, in order."""
    args = script_args(limits, *requests[0])
    for events, size in requests[1:]:
        args += (events, size)
    return args


def refusal(tenant: str, limits: Limits, decision: Decision) -> RateLimited:
    """The 429 of a refused request: which limit, its value, and when to come back."""
    limit = decision.limit
    value = getattr(limits, limit)
    retry_after = max(1, math.ceil(decision.wait_seconds - 1e-6))
    if limit == "daily_events":
        detail = (
            f"Tenant '{tenant}' has used its daily quota of {value:,} events "
            f"(daily_events); it starts over at 00:00 UTC, in {retry_after:,} s."
        )
    else:
        unit = "events" if limit == "ingest_events_per_second" else "bytes"
        detail = (
            f"Tenant '{tenant}' is over its ingest rate of {value:,} {unit}/s ({limit}, "
            f"burst {limits.event_capacity:,} events); nothing of this request was accepted. "
            f"Retry after {retry_after} s, or send less per second."
        )
    return RateLimited(detail, slug=SLUGS[limit], limit=limit, value=value, retry_after=retry_after)


@dataclass(slots=True)
class _Waiting:
    """A tenant's requests waiting for the next script call: (events, bytes, answer)."""

    limits: Limits
    requests: list[tuple[int, int, asyncio.Future[Decision | None]]] = field(default_factory=list)


class IngestAdmission:
    """Admits or refuses ingest requests against each tenant's limits (Redis-shared)."""

    def __init__(
        self,
        client: redis.Redis | None,
        limits_of: LimitsSource,
        guard: StoreGuard,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.limits_of = limits_of
        self.guard = guard
        self.clock = clock
        self._admit = client.register_script(ADMIT) if client is not None else None
        self._refund = client.register_script(REFUND) if client is not None else None
        # tenant -> (until when, the refusal's limit, value and detail's maker)
        self._cooling: dict[str, tuple[float, Limits, Decision]] = {}
        # Requests waiting for a decision, per tenant, and the tenants being decided now.
        self._waiting: dict[str, _Waiting] = {}
        self._deciding: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def precheck(self, tenant: str) -> None:
        """Refuse at once a tenant this process refused moments ago (until its
        Retry-After has passed); otherwise return (the real check is :meth:`admit`)."""
        cooling = self._cooling.get(tenant)
        if cooling is None:
            return
        until, limits, decision = cooling
        left = until - self.clock()
        if left <= 0:
            del self._cooling[tenant]
            return
        await record_refusal(self.client, self.guard, tenant, decision.limit)
        raise refusal(tenant, limits, Decision(False, decision.limit, left))

    async def admit(self, tenant: str, events: int, size: int) -> None:
        """Take ``events`` events of ``size`` bytes from the tenant's buckets, or raise
        :class:`RateLimited`. Returns without a check when Redis is away."""
        await self.precheck(tenant)
        limits = await self.limits_of(tenant)
        if self._admit is None:
            return
        decision = await self._decide(tenant, limits, events, size)
        if decision is None or decision.admitted:
            return
        count_refusal(tenant, decision.limit)
        if decision.limit != "daily_events":  # (a smaller request may still fit the day)
            if len(self._cooling) >= MAX_COOLING:
                self._cooling.clear()
            self._cooling[tenant] = (self.clock() + decision.wait_seconds, limits, decision)
        raise refusal(tenant, limits, decision)

    def _decide(
        self, tenant: str, limits: Limits, events: int, size: int
    ) -> asyncio.Future[Decision | None]:
        """The script's decision on this request (``None``: Redis away, let through),
        taken together with the tenant's other requests waiting at the same time."""
        future: asyncio.Future[Decision | None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(tenant)
        if waiting is None:
            waiting = self._waiting[tenant] = _Waiting(limits)
        waiting.limits = limits  # the latest the tenant's requests were given
        waiting.requests.append((events, size, future))
        if tenant not in self._deciding:
            self._deciding.add(tenant)
            task = asyncio.create_task(self._decide_waiting(tenant))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def _decide_waiting(self, tenant: str) -> None:
        """Decide the tenant's waiting requests, one script call at a time, until none
        wait: those that arrive during a call are decided together by the next."""
        assert self._admit is not None
        script = self._admit
        try:
            while (waiting := self._waiting.get(tenant)) is not None:
                batch = waiting.requests[:MAX_BATCH]
                del waiting.requests[:MAX_BATCH]
                if not waiting.requests:
                    del self._waiting[tenant]
                limits = waiting.limits
                args = batch_args(limits, [(events, size) for events, size, _ in batch])
                keys = [bucket_key(tenant), usage_key(tenant, utc_day())]

                async def decide(
                    keys: list[str] = keys, args: list[int | float] = args
                ) -> list[Decision]:
                    return Decision.from_replies(await script(keys=keys, args=args))

                decisions: list[Decision] | None = None
                try:
                    decisions = await self.guard.run("ingest", decide, None)
                finally:  # (cancelled at shutdown: the requests pass unchecked)
                    if decisions is None:
                        if len(batch) > 1:  # the guard counted one; each was let through
                            LIMITS_UNENFORCED.labels(self.guard.service, "ingest").inc(
                                len(batch) - 1
                            )
                        results: list[Decision | None] = [None] * len(batch)
                    else:
                        self._observe(tenant, limits, decisions[-1])
                        results = list(decisions)
                    for (_, _, future), result in zip(batch, results, strict=True):
                        if not future.done():  # (its request may have been cancelled)
                            future.set_result(result)
        finally:
            self._deciding.discard(tenant)

    async def refund(self, tenant: str, events: int, size: int) -> None:
        """Take a request that was admitted but not queued back out of the day's usage
        (its tokens stay spent: the refill soon returns them)."""
        if self._refund is None:
            return
        script = self._refund
        key = usage_key(tenant, utc_day())

        async def call() -> None:
            await script(keys=[key], args=[events, size])

        await self.guard.run("ingest_refund", call, None)

    @staticmethod
    def _observe(tenant: str, limits: Limits, decision: Decision) -> None:
        if limits.ingest_events_per_second:
            LIMIT_UTILISATION.labels(tenant, "ingest_events_per_second").set(
                decision.rate / limits.ingest_events_per_second
            )
        if limits.ingest_bytes_per_second:
            LIMIT_UTILISATION.labels(tenant, "ingest_bytes_per_second").set(
                decision.byte_rate / limits.ingest_bytes_per_second
            )
