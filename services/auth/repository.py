"""Token issuance: client credentials in, RS256 JWT out."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from jose import jwt
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.auth.keys import KeyRing
from services.core.credentials import (
    API_KEYS,
    TENANT_ACTIVE,
    TENANTS,
    hash_secret,
    secret_matches,
)
from services.core.errors import Unauthorized
from services.core.rbac import PLATFORM_TENANT, Role

INVALID_CLIENT = "Invalid client credentials."
log = logging.getLogger(__name__)


class InvalidClient(Unauthorized):
    """One message for every failure, so a caller learns nothing about which part was wrong."""

    slug = "invalid-client"

    def __init__(self) -> None:
        super().__init__(INVALID_CLIENT)

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        return {**super().to_problem(instance), "error": "invalid_client"}


class TokenIssuer:
    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, ttl: int) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(self, *, sub: str, tenant: str, role: str) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "sub": sub,
            "tenant": tenant,
            "role": role,
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        key = self.keyring.signing
        token = jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid})
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl}


async def exchange_client_credentials(
    db: AsyncDatabase, issuer: TokenIssuer, client_id: str, client_secret: str
) -> dict[str, Any]:
    key = await db[API_KEYS].find_one({"_id": client_id})
    if (
        key is None
        or key.get("revoked_at")
        or not secret_matches(client_secret, key["secret_hash"])
    ):
        raise InvalidClient()
    tenant = key["tenant"]
    if tenant != PLATFORM_TENANT:
        doc = await db[TENANTS].find_one({"_id": tenant}, {"status": 1})
        if doc is None or doc.get("status") != TENANT_ACTIVE:
            raise InvalidClient()
    await db[API_KEYS].update_one({"_id": client_id}, {"$set": {"last_used_at": datetime.now(UTC)}})
    return issuer.issue(sub=client_id, tenant=tenant, role=key["role"])


async def bootstrap_admin(db: AsyncDatabase, client_id: str, secret: str) -> bool:
    """Create the platform-admin credential given in settings, once; True if created.

    Only an absent credential is written. One that an operator revoked, or whose
    secret was rotated since, stays exactly so: a restart (every auth start runs
    this) must not bring a revoked admin back or undo a rotation. To recreate it
    from settings, delete its record; the next start creates it again.
    """
    try:
        await db[API_KEYS].insert_one(
            {
                "_id": client_id,
                "tenant": PLATFORM_TENANT,
                "role": Role.ADMIN.value,
                "name": "platform admin (bootstrap)",
                "secret_hash": hash_secret(secret),
                "created_at": datetime.now(UTC),
                "last_used_at": None,
                "revoked_at": None,
            }
        )
        log.info("bootstrap admin created", extra={"client_id": client_id})
        return True
    except DuplicateKeyError:
        pass  # created by an earlier start or by another auth replica
    existing = await db[API_KEYS].find_one({"_id": client_id}) or {}
    if existing.get("revoked_at"):
        log.warning(
            "bootstrap admin is revoked and stays revoked (settings not applied)",
            extra={"client_id": client_id},
        )
    elif not secret_matches(secret, existing.get("secret_hash", "")):
        log.warning(
            "bootstrap admin's secret differs from settings (rotated); the stored one stays",
            extra={"client_id": client_id},
        )
    return False
