"""How many queries or live tails a tenant has open, counted across every replica.

Each open query or stream holds a *lease*: a member of the sorted set
``logserver:slots:{<tenant>}:<kind>`` scored by when it lapses. Taking one is one
script (drop lapsed leases, count, refuse at the limit or add), giving it back one
``ZREM``. The process holding leases renews them every third of their lifetime,
so a lease outlives its holder (a killed process) by at most ``lease_seconds``:
that is the longest a crash can keep a tenant's slot taken.

If Redis does not answer, a slot is granted unchecked (limits fail open, see
:mod:`services.core.limitstore`); such a lease is not renewed or given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from dataclasses import dataclass

import redis.asyncio as redis

from services.core.limitstore import USAGE_TTL_SECONDS, StoreGuard, slots_key, usage_key, utc_day

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0

# KEYS: slots, usage of the day. ARGV: member, limit (0: none), lease seconds, refusal
# reason, usage TTL. Returns {1, count with this one} or {0, count} (refused, counted).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local limit, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.6f', now))
local held = redis.call('ZCARD', KEYS[1])
if limit > 0 and held >= limit then
  redis.call('HINCRBY', KEYS[2], 'refused:' .. ARGV[4], 1)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
  return {0, held}
end
redis.call('ZADD', KEYS[1], string.format('%.6f', now + lease), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(lease * 2))
return {1, held + 1}
"""

# KEYS: slots. ARGV: lease seconds, members. Extends the leases that still exist.
RENEW = """
local t = redis.call('TIME')
local until_ = string.format('%.6f', tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(ARGV[1]))
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[i])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1]) * 2))
return #ARGV - 1
"""


@dataclass(eq=False, slots=True)
class Lease:
    """One open query or stream of ``tenant``. ``counted``: Redis has it (False when
    the slot was granted unchecked, Redis being away)."""

    tenant: str
    member: str
    counted: bool
    held: int = 0  # the tenant's open ones, this one included, when it was granted


class SlotLeases:
    """Leases of one kind (``queries``, ``tails``) for the tenants of this process."""

    def __init__(
        self,
        client: redis.Redis | None,
        kind: str,
        guard: StoreGuard,
        *,
        reason: str,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.client = client
        self.kind = kind
        self.guard = guard
        self.reason = reason  # the name refusals are counted under (the limit's field)
        self.lease_seconds = lease_seconds
        self._held: dict[str, set[str]] = defaultdict(set)  # tenant -> members held here
        self._acquire = client.register_script(ACQUIRE) if client is not None else None
        self._renew = client.register_script(RENEW) if client is not None else None
        self._renewer: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def acquire(self, tenant: str, limit: int) -> Lease | None:
        """A lease, or None when the tenant already holds ``limit`` (0: no limit)."""
        member = secrets.token_hex(8)
        unchecked = Lease(tenant, member, counted=False)
        if self._acquire is None:
            return unchecked
        script = self._acquire

        async def take() -> Lease | None:
            keys = [slots_key(tenant, self.kind), usage_key(tenant, utc_day())]
            args = [member, limit, self.lease_seconds, self.reason, USAGE_TTL_SECONDS]
            granted, held = await script(keys=keys, args=args)
            if not granted:
                return None
            return Lease(tenant, member, counted=True, held=int(held))

        lease = await self.guard.run(f"{self.kind}_slots", take, unchecked)
        if lease is not None and lease.counted:
            self._held[tenant].add(member)
        return lease

    def release(self, lease: Lease) -> None:
        """Give the lease back. Never waits: the ``ZREM`` runs in the background (this
        is called from ``finally`` blocks of cancelled requests too); if it fails, the
        lease lapses on its own, no longer renewed."""
        members = self._held.get(lease.tenant)
        if members is None or lease.member not in members:
            return
        members.discard(lease.member)
        if not members:
            del self._held[lease.tenant]
        task = asyncio.get_running_loop().create_task(self._remove(lease))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _remove(self, lease: Lease) -> None:
        assert self.client is not None
        client = self.client

        async def zrem() -> None:
            await client.zrem(slots_key(lease.tenant, self.kind), lease.member)

        await self.guard.run(f"{self.kind}_slots", zrem, None)

    def held_here(self, tenant: str) -> int:
        return len(self._held.get(tenant, ()))

    # --- renewal -------------------------------------------------------------------------

    def start(self) -> None:
        if self._renewer is None and self._renew is not None:
            self._renewer = asyncio.create_task(self._renew_forever(), name=f"{self.kind}-leases")

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._pending:
            await asyncio.wait(self._pending, timeout=2)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self.renew()
            except Exception as exc:  # Redis away: the leases may lapse; nothing to stop
                log.warning("could not renew slot leases", extra={"error": str(exc)})

    async def renew(self) -> None:
        """Extend every lease this process holds (one pipelined round trip)."""
        if not self._held or self.client is None or self._renew is None:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for tenant, members in list(self._held.items()):
                await self._renew(
                    keys=[slots_key(tenant, self.kind)],
                    args=[self.lease_seconds, *members],
                    client=pipe,
                )
            await pipe.execute()
