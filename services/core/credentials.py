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
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.database import AsyncDatabase

from services.core.errors import NotFound, Unauthorized, Unavailable
from services.core.invalidation import Invalidation
from services.core.lookupcache import LookupCache
from services.core.principal import Principal
from services.core.rbac import PLATFORM_TENANT

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


class CredentialStatus:
    """Whether a token's API key and tenant are still active, cached per (key, tenant).

    The answer, "active" (None) or the reason it is refused, is cached by a
    :class:`~services.core.lookupcache.LookupCache` for ``ttl_seconds`` at most;
    :meth:`invalidate` (subscribed to the invalidation bus) drops the ones a change
    may have made stale.
    """

    def __init__(self, db: AsyncDatabase, ttl_seconds: float) -> None:
        self.db = db
        self.ttl = ttl_seconds
        # (key id, tenant) -> the problem, None when active. ("", tenant) holds a
        # tenant's own status (ensure_tenant).
        self._cache: LookupCache[tuple[str, str], str | None] = LookupCache(
            ttl_seconds, "credential status"
        )

    def invalidate(self, change: Invalidation) -> None:
        """Forget every answer ``change`` may have made stale (an invalidation-bus callback)."""
        if change.everything:
            self._cache.clear()
        else:
            # affects_key matches ("", tenant) through the tenant, never the empty key id.
            self._cache.drop(lambda key, _problem: change.affects_key(*key))

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

    async def _problem(
        self, cache_key: tuple[str, str], lookup: Callable[[], Awaitable[str | None]]
    ) -> str | None:
        return await self._cache.get(cache_key, lookup, _unavailable)

    async def ensure_tenant(self, tenant: str) -> None:
        """For a platform admin naming a tenant: it must exist and be active (cached)."""
        problem = await self._problem(("", tenant), lambda: self._tenant_lookup(tenant))
        if problem:
            raise NotFound(problem)

    def known_active(self, principal: Principal) -> bool:
        """Whether a fresh cached answer says the token's key and tenant are active: the
        hot path's check, without a coroutine (else :meth:`ensure_active` decides)."""
        entry = self._cache.fresh((principal.sub, principal.tenant_claim))
        return entry is not None and entry.value is None

    async def ensure_active(self, principal: Principal) -> None:
        """The token's API key is not revoked and its tenant is active, else 401."""
        cache_key = (principal.sub, principal.tenant_claim)
        problem = await self._problem(cache_key, lambda: self._lookup(*cache_key))
        if problem:
            raise Unauthorized(problem)


def _unavailable(exc: Exception) -> str | None:
    raise Unavailable("Cannot check the credential right now; retry.") from exc
