"""A lease in Redis: at most one holder of a name at a time, for a bounded time.

``SET key holder NX PX ttl`` takes it; only the holder extends or drops it (a
compare-and-set in Lua, atomic in Redis). A holder that dies simply lets it
expire. Used so that one worker replica, not every one, runs the retention sweep.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def holder_id() -> str:
    """Who holds a lease, readable in logs: the pod (host) name, the pid, a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    def __init__(self, redis: Any, key: str, holder: str, ttl_seconds: float) -> None:
        self.redis = redis
        self.key = key
        self.holder = holder
        self.ttl_ms = max(1, int(ttl_seconds * 1000))

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(await self.redis.set(self.key, self.holder, nx=True, px=self.ttl_ms))

    async def renew(self, ttl_seconds: float | None = None) -> bool:
        """Make it last ``ttl_seconds`` (default: the lease's ttl) from now; False if it
        expired or another holder has it now."""
        ttl_ms = self.ttl_ms if ttl_seconds is None else max(1, int(ttl_seconds * 1000))
        return bool(await self.redis.eval(RENEW, 1, self.key, self.holder, ttl_ms))

    async def release(self) -> None:
        """Drop it, if it is still ours."""
        await self.redis.eval(RELEASE, 1, self.key, self.holder)
