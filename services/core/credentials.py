"""API-key records (shared by the auth and tenant services) and their live status.

A token stays cryptographically valid until it expires, so revoking its API
key or disabling its tenant must be checked separately. Every service keeps
the answer of MongoDB about a (key, tenant) pair (and, for a platform admin
naming a tenant, about that tenant) in :class:`CredentialStatus`, and drops
it as soon as the tenant service announces a change on the
:class:`~services.core.invalidation.InvalidationBus`: revocations, disabled
and re-enabled tenants take effect at once in every process.
``credential_cache_seconds`` is only the fallback bound, for a change whose
announcement was lost (Redis unreachable).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from services.core.errors import NotFound, Unauthorized, Unavailable
from services.core.invalidation import Invalidation
from services.core.principal import Principal
from services.core.rbac import PLATFORM_TENANT
from services.core.singleflight import SingleFlight

API_KEYS = "api_keys"
TENANTS = "tenants"
TENANT_ACTIVE = "active"
TENANT_DISABLED = "disabled"
log = logging.getLogger(__name__)


def new_key_id() -> str:
    return "lsk_" + secrets.token_hex(12)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 is enough here: secrets are 256 random bits, not guessable passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


@dataclass(slots=True)
class _Status:
    problem: str | None
    checked_at: float


class CredentialStatus:
    """Whether a token's API key and tenant are still active, cached per (key, tenant).

    Both answers are cached, "active" and "refused", for ``ttl_seconds`` at most;
    :meth:`invalidate` (subscribed to the invalidation bus) drops the ones a change
    may have made stale. Concurrent requests of one credential share one lookup.
    """

    MAX_ENTRIES = 50_000

    def __init__(self, db: AsyncDatabase, ttl_seconds: float) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str], _Status] = {}
        self._lookups: SingleFlight[str | None] = SingleFlight()
        # Bumped by every invalidation. A lookup that started under an older generation
        # may have read MongoDB before the change: its answer is neither cached nor
        # shared with callers that arrive after the invalidation.
        self._generation = 0

    def invalidate(self, change: Invalidation) -> None:
        """Forget every answer ``change`` may have made stale (an invalidation-bus callback)."""
        self._generation += 1
        if change.everything:
            self._cache.clear()
            return
        # ("", tenant) holds a tenant's own status (ensure_tenant): affects_key matches it
        # through the tenant, never through the empty key id.
        for cache_key in [k for k in self._cache if change.affects_key(*k)]:
            del self._cache[cache_key]

    async def _lookup(self, key_id: str, tenant: str) -> str | None:
        key = await self.db[API_KEYS].find_one({"_id": key_id}, {"revoked_at": 1, "tenant": 1})
        if key is None or key.get("revoked_at") or key.get("tenant") != tenant:
            return "The API key behind this token was revoked."
        if tenant != PLATFORM_TENANT:
            doc = await self.db[TENANTS].find_one({"_id": tenant}, {"status": 1})
            if doc is None or doc.get("status") != TENANT_ACTIVE:
                return f"Tenant '{tenant}' is disabled."
        return None

    async def _tenant_lookup(self, tenant: str) -> str | None:
        doc = await self.db[TENANTS].find_one({"_id": tenant}, {"status": 1})
        if doc is None:
            return f"No tenant '{tenant}'."
        if doc.get("status") != TENANT_ACTIVE:
            return f"Tenant '{tenant}' is disabled."
        return None

    async def _status(
        self, cache_key: tuple[str, str], lookup: Callable[[], Awaitable[str | None]]
    ) -> _Status:
        """The cached answer for ``cache_key``, looked up again once older than the TTL.

        One MongoDB lookup per credential at a time: when an entry expires under
        load, the concurrent requests of that credential share the same query
        instead of each sending their own (a stampede on the storage).
        """
        now = time.monotonic()
        status = self._cache.get(cache_key)
        if status is not None and now - status.checked_at < self.ttl:
            return status
        generation = self._generation
        try:
            problem = await self._lookups.run((cache_key, generation), lookup)
        except Exception as exc:
            if status is None or generation != self._generation:
                raise Unavailable("Cannot check the credential right now; retry.") from exc
            # MongoDB is unreachable: keep the last known answer rather than fail
            # every request of a credential that was valid a moment ago, and do not
            # ask again (and wait on a timeout) for every request meanwhile.
            log.warning("credential status check failed", extra={"error": str(exc)})
            status.checked_at = now
            return status
        status = _Status(problem, now)
        if generation == self._generation:  # no change announced while we asked
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[cache_key] = status
        return status

    async def ensure_tenant(self, tenant: str) -> None:
        """For a platform admin naming a tenant: it must exist and be active (cached)."""
        status = await self._status(("", tenant), lambda: self._tenant_lookup(tenant))
        if status.problem:
            raise NotFound(status.problem)

    def known_active(self, principal: Principal) -> bool:
        """Whether a fresh cached answer says the token's key and tenant are active: the
        hot path's check, without a coroutine (else :meth:`ensure_active` decides)."""
        status = self._cache.get((principal.sub, principal.tenant_claim))
        return (
            status is not None
            and status.problem is None
            and time.monotonic() - status.checked_at < self.ttl
        )

    async def ensure_active(self, principal: Principal) -> None:
        """The token's API key is not revoked and its tenant is active, else 401."""
        cache_key = (principal.sub, principal.tenant_claim)
        status = await self._status(cache_key, lambda: self._lookup(*cache_key))
        if status.problem:
            raise Unauthorized(status.problem)
