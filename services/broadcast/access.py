"""Whether an open stream may still be served: its token's expiry, its key and tenant.

A stream stays subject to its token: revoking the key or disabling the tenant,
announced on the invalidation bus, closes it at once; a re-check every
``credential_cache_seconds`` bounds the delay should an announcement be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.core.credentials import CredentialStatus
from services.core.errors import (
    LogServerError,
    NotFound,
    Unauthorized,
)
from services.core.invalidation import Invalidation, InvalidationBus
from services.core.principal import Principal

log = logging.getLogger(__name__)


class AccessWatch:
    """Tells when an open stream may no longer be served, and why.

    It listens from its creation (right after the connection was authorized) so
    no announced change is missed, checks once at once, then again on every
    change that concerns the stream's key or tenant and at least every
    ``every`` seconds; the token's expiry ends it too.
    """

    def __init__(
        self,
        credentials: CredentialStatus,
        invalidations: InvalidationBus,
        principal: Principal,
        tenant: str,
        every: float,
    ) -> None:
        self.credentials = credentials
        self.principal = principal
        self.tenant = tenant
        self.every = max(every, 1.0)
        self._changed = asyncio.Event()
        self._changed.set()  # a change may have come between the authorization and now
        self._unsubscribe = invalidations.subscribe(self._on_change)
        self._task: asyncio.Task[LogServerError] | None = None

    def _on_change(self, change: Invalidation) -> None:
        p = self.principal
        if change.affects_key(p.sub, p.tenant_claim) or change.affects_tenant(self.tenant):
            self._changed.set()

    def start(self) -> asyncio.Task[LogServerError]:
        """Run :meth:`ended` in a task; it finishes with the reason to close the stream."""
        self._task = asyncio.create_task(self.ended())
        return self._task

    def close(self) -> None:
        self._unsubscribe()
        if self._task is not None:
            self._task.cancel()

    async def ended(self) -> LogServerError:
        """Return the reason to close the stream, once there is one."""
        while True:
            left = self.principal.expires_at - time.time()
            if left <= 0:
                return Unauthorized("The token expired; reconnect with a new one.")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(self.every, left))
            self._changed.clear()
            if self.principal.expires_at <= time.time():
                continue
            try:
                await self.credentials.ensure_active(self.principal)
                if self.principal.is_platform_admin:
                    await self.credentials.ensure_tenant(self.tenant)
            except (Unauthorized, NotFound) as exc:
                return exc
            except Exception as exc:
                # Cannot tell right now (MongoDB unreachable and nothing cached): keep
                # streaming rather than cut every client off, and ask on the next turn.
                log.warning("stream access re-check failed", extra={"error": str(exc)})
