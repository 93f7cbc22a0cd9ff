"""API-key records (shared by the auth and tenant services) and their live status.

A token stays cryptographically valid until it expires, so revoking its API
key or disabling its tenant must be checked separately. Every service asks
MongoDB about a (key, tenant) pair at most once per
``credential_cache_seconds``: that is the documented bound on how late a
revocation takes effect for tokens already issued.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from services.core.errors import NotFound, Unauthorized, Unavailable
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
    def __init__(self, db: AsyncDatabase, ttl_seconds: float) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str], _Status] = {}
        self._lookups: SingleFlight[str | None] = SingleFlight()

    async def _lookup(self, key_id: str, tenant: str) -> str | None:
        key = await self.db[API_KEYS].find_one({"_id": key_id}, {"revoked_at": 1, "tenant": 1})
        if key is None or key.get("revoked_at") or key.get("tenant") != tenant:
            return "The API key behind this token was revoked."
        if tenant != PLATFORM_TENANT:
            doc = await self.db[TENANTS].find_one({"_id": tenant}, {"status": 1})
            if doc is None or doc.get("status") != TENANT_ACTIVE:
                return f"Tenant '{tenant}' is disabled."
        return None

    async def ensure_tenant(self, tenant: str) -> None:
        """For a platform admin naming a tenant: it must exist and be active (cached)."""
        now = time.monotonic()
        status = self._cache.get(("", tenant))
        if status is None or now - status.checked_at >= self.ttl:
            doc = await self.db[TENANTS].find_one({"_id": tenant}, {"status": 1})
            problem = None
            if doc is None:
                problem = f"No tenant '{tenant}'."
            elif doc.get("status") != TENANT_ACTIVE:
                problem = f"Tenant '{tenant}' is disabled."
            status = _Status(problem, now)
            self._cache[("", tenant)] = status
        if status.problem:
            raise NotFound(status.problem)

    async def _shared_lookup(self, cache_key: tuple[str, str]) -> str | None:
        """One MongoDB lookup per credential at a time: when an entry expires under
        load, the concurrent requests of that credential share the same query
        instead of each sending their own (a stampede on the storage)."""
        return await self._lookups.run(cache_key, lambda: self._lookup(*cache_key))

    async def ensure_active(self, principal: Principal) -> None:
        cache_key = (principal.sub, principal.tenant_claim)
        now = time.monotonic()
        status = self._cache.get(cache_key)
        if status is None or now - status.checked_at >= self.ttl:
            try:
                problem = await self._shared_lookup(cache_key)
                status = _Status(problem, now)
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[cache_key] = status
            except Exception as exc:
                if status is None:
                    raise Unavailable("Cannot check the credential right now; retry.") from exc
                # MongoDB is unreachable: keep the last known answer rather than fail
                # every request of a credential that was valid a moment ago, and do not
                # ask again (and wait on a timeout) for every request meanwhile.
                log.warning("credential status check failed", extra={"error": str(exc)})
                status.checked_at = now
        if status.problem:
            raise Unauthorized(status.problem)
