"""API keys presented directly, as log shippers do: HTTP Basic or ``ApiKey``.

Shippers (OpenTelemetry Collector, Fluent Bit, Vector, Promtail, Logstash,
rsyslog...) cannot run an OAuth client-credentials flow, so ingest also accepts
the key itself: ``Authorization: Basic base64(client_id:client_secret)`` or, as
Elasticsearch clients send it, ``Authorization: ApiKey base64(client_id:client_secret)``.

Checking a secret means reading the key from MongoDB and comparing hashes; a
busy shipper sends the same credential many times a second, so the answer is
cached per (client id, SHA-256 of the secret) for ``ttl_seconds`` and dropped at
once when the tenant service announces a change of that key or its tenant on
the :class:`~services.core.invalidation.InvalidationBus` (as
:class:`~services.core.credentials.CredentialStatus` is). Refusals are cached
too (a misconfigured agent retrying must not become a MongoDB load), but a
wrong secret can never be remembered as valid: an entry is keyed by the hash
of the secret that was checked. Concurrent requests of one credential share one
lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from services.core.credentials import API_KEYS, TENANT_ACTIVE, TENANTS
from services.core.errors import BadRequest, Forbidden, Unauthorized, Unavailable
from services.core.invalidation import Invalidation
from services.core.lookupcache import LookupCache
from services.core.principal import Principal
from services.core.rbac import PLATFORM_TENANT, Permission, allows

log = logging.getLogger(__name__)

MACHINE_SCHEMES = ("basic", "apikey")
INVALID_KEY = "Invalid API key: unknown client id, wrong secret, revoked key or disabled tenant."
# What a 401 of an ingest route offers (RFC 9110 §11.6.1).
CHALLENGE = {"WWW-Authenticate": 'Basic realm="logserver", ApiKey, Bearer realm="logserver"'}


@dataclass(frozen=True, slots=True)
class MachineCredential:
    client_id: str
    secret: str


def machine_credential(header: str | None) -> MachineCredential | None:
    """The key in ``Authorization: Basic …`` or ``ApiKey …``; None for other schemes.

    A malformed value of either scheme is a 400: the client meant to send a key.
    """
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in MACHINE_SCHEMES:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest(
            f"The {scheme.title()} authorization is not base64 of 'client_id:client_secret'."
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not secret:
        raise Unauthorized(
            "Send the API key as 'client_id:client_secret' (HTTP Basic user and password, "
            "or base64 of it after 'ApiKey').",
            headers=CHALLENGE,
        )
    return MachineCredential(client_id, secret)


@dataclass(frozen=True, slots=True)
class _Answer:
    principal: Principal | None  # None: refused
    tenant: str  # the key's tenant ("" when there is no such key): for invalidation


class ApiKeyAuthenticator:
    """Verifies a client id and secret against ``api_keys``, with a cache (see module doc)."""

    def __init__(self, db: AsyncDatabase, ttl_seconds: float) -> None:
        self.db = db
        self.ttl = ttl_seconds
        # (client id, SHA-256 of the secret checked) -> the answer.
        self._cache: LookupCache[tuple[str, bytes], _Answer] = LookupCache(ttl_seconds, "API key")

    def invalidate(self, change: Invalidation) -> None:
        """Forget every answer ``change`` may have made stale (an invalidation-bus callback)."""
        if change.everything:
            self._cache.clear()
        else:
            self._cache.drop(lambda key, answer: change.affects_key(key[0], answer.tenant))

    async def _lookup(self, client_id: str, digest: bytes) -> _Answer:
        key = await self.db[API_KEYS].find_one(
            {"_id": client_id}, {"secret_hash": 1, "tenant": 1, "role": 1, "revoked_at": 1}
        )
        if key is None:
            return _Answer(None, "")
        tenant = str(key.get("tenant", ""))
        stored = key.get("secret_hash")
        if (
            not isinstance(stored, str)
            or not hmac.compare_digest(digest.hex(), stored)
            or key.get("revoked_at")
        ):
            return _Answer(None, tenant)
        if tenant != PLATFORM_TENANT:
            doc = await self.db[TENANTS].find_one({"_id": tenant}, {"status": 1})
            if doc is None or doc.get("status") != TENANT_ACTIVE:
                return _Answer(None, tenant)
        principal = Principal(
            sub=client_id, tenant_claim=tenant, role=str(key.get("role")), jti="", expires_at=0
        )
        return _Answer(principal, tenant)

    async def _answer(self, client_id: str, digest: bytes) -> _Answer:
        # MongoDB unreachable: the last answer for this very secret (valid or not) stands.
        return await self._cache.get(
            (client_id, digest), lambda: self._lookup(client_id, digest), _unavailable
        )

    async def authenticate(self, credential: MachineCredential) -> Principal:
        """The key's principal, if the secret is right, the key live, its tenant active and
        its role may ingest; else 401 (one message for every failure) or 403."""
        digest = hashlib.sha256(credential.secret.encode()).digest()
        answer = await self._answer(credential.client_id, digest)
        if answer.principal is None:
            raise Unauthorized(INVALID_KEY, headers=CHALLENGE)
        if not allows(answer.principal.role, Permission.LOGS_WRITE):
            raise Forbidden(
                f"The '{answer.principal.role}' role may not ingest logs. An API key is "
                "accepted directly only to ingest, and only if its role may write (writer, "
                "admin); exchange other keys for a token at /api/v1/auth/token."
            )
        return answer.principal


def _unavailable(exc: Exception) -> _Answer:
    raise Unavailable("Cannot check the API key right now; retry.") from exc
