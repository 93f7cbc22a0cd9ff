"""Tenants and API keys in MongoDB, always read through the caller's scope.

``_scope`` is the one place tenant isolation lives here: a platform admin
sees every tenant, a tenant-bound admin only its own, so a handler cannot
forget the filter. Another tenant's records answer 404, as if absent.

Every write that can change whether a token is accepted (or anything else a
service caches about a tenant) is announced on the invalidation bus once
MongoDB has it, so every service applies it at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.core.credentials import (
    API_KEYS,
    TENANT_ACTIVE,
    TENANT_DISABLED,
    TENANTS,
    hash_secret,
    new_key_id,
    new_secret,
)
from services.core.errors import Conflict, Forbidden, NotFound
from services.core.invalidation import Invalidation, InvalidationBus
from services.core.limits import LIMIT_FIELDS, Limits
from services.core.logs import ring
from services.core.logs.repository import ensure_indexes
from services.core.principal import Principal
from services.tenant.schemas import ApiKeyCreate, LimitsPatch, TenantCreate, TenantUpdate

log = logging.getLogger(__name__)

KEYS_BY_TENANT = IndexModel(
    [("tenant", ASCENDING), ("created_at", ASCENDING)], name="tenant_created"
)


def tenant_out(doc: dict[str, Any], defaults: Limits) -> dict[str, Any]:
    """A tenant as the API shows it: ``limits`` are the effective ones (the defaults
    with the tenant's overrides), ``limit_overrides`` what was set for this tenant."""
    out = {k: v for k, v in doc.items() if k not in ("_id", "limits")}
    stored = doc.get("limits") or {}
    overrides = {k: stored[k] for k in LIMIT_FIELDS if stored.get(k) is not None}
    effective = defaults.with_overrides(overrides).as_dict()
    return {"key": doc["_id"], **out, "limits": effective, "limit_overrides": overrides}


def limit_changes(patch: LimitsPatch | None) -> tuple[dict[str, int], dict[str, str]]:
    """``$set`` and ``$unset`` of a limits patch: given fields are set, null ones go
    back to their default (unset), the others are not touched; a null patch unsets all."""
    if patch is None:
        return {}, {"limits": ""}
    to_set: dict[str, int] = {}
    to_unset: dict[str, str] = {}
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            to_unset[f"limits.{name}"] = ""
        else:
            to_set[f"limits.{name}"] = value
    return to_set, to_unset


def key_out(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "tenant": doc["tenant"],
        "name": doc["name"],
        "role": doc["role"],
        "created_at": doc["created_at"],
        "last_used_at": doc.get("last_used_at"),
        "revoked_at": doc.get("revoked_at"),
    }


def _require_platform(principal: Principal, action: str) -> None:
    if not principal.is_platform_admin:
        raise Forbidden(f"Only a platform admin may {action}.")


class TenantRepository:
    def __init__(
        self,
        db: AsyncDatabase,
        invalidations: InvalidationBus,
        default_limits: Limits,
        redis_client: redis.Redis | None = None,
    ) -> None:
        self.tenants = db[TENANTS]
        self.keys = db[API_KEYS]
        self.invalidations = invalidations
        self.redis = redis_client
        self.default_limits = default_limits

    def out(self, doc: dict[str, Any]) -> dict[str, Any]:
        return tenant_out(doc, self.default_limits)

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.keys, [KEYS_BY_TENANT])

    @staticmethod
    def _scope(principal: Principal) -> dict[str, Any]:
        return {} if principal.is_platform_admin else {"_id": principal.tenant_claim}

    def _scoped(self, principal: Principal, query: dict[str, Any]) -> dict[str, Any]:
        scope = self._scope(principal)
        return {"$and": [scope, query]} if scope else query

    async def create(self, principal: Principal, data: TenantCreate) -> dict[str, Any]:
        _require_platform(principal, "create tenants")
        now = datetime.now(UTC)
        doc = {
            "_id": data.key,
            "name": data.name,
            "retention_days": data.retention_days,
            "description": data.description,
            "status": TENANT_ACTIVE,
            "created_at": now,
            "updated_at": now,
        }
        if data.limits is not None:
            doc["limits"] = data.limits.model_dump(exclude_none=True)
        try:
            await self.tenants.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict(f"A tenant with key '{data.key}' already exists.") from exc
        await self.invalidations.publish(Invalidation(data.key))  # "no such tenant" was cached
        if self.redis is not None:
            try:  # best effort: without it, the first replay rebuilds the ring instead
                await ring.start_empty(self.redis, data.key)
            except Exception as exc:
                log.warning("recent-events ring not started", extra={"error": str(exc)[:300]})
        return doc

    async def list(
        self, principal: Principal, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        scope = self._scope(principal)
        cursor = self.tenants.find(scope).sort("_id", ASCENDING).skip(offset).limit(limit)
        docs = await cursor.to_list()
        return docs, await self.tenants.count_documents(scope)

    async def get(self, principal: Principal, key: str) -> dict[str, Any]:
        doc = await self.tenants.find_one(self._scoped(principal, {"_id": key}))
        if doc is None:
            raise NotFound(f"No tenant '{key}'.")
        return doc

    async def update(self, principal: Principal, key: str, patch: TenantUpdate) -> dict[str, Any]:
        await self.get(principal, key)
        changes = patch.model_dump(exclude_unset=True, exclude={"limits"})
        if "status" in changes:
            _require_platform(principal, "enable or disable a tenant")
        update: dict[str, Any] = {}
        if "limits" in patch.model_fields_set:
            # A tenant's own admin must not lift the limits that protect other tenants.
            _require_platform(principal, "change a tenant's limits")
            to_set, to_unset = limit_changes(patch.limits)
            changes.update(to_set)
            if to_unset:
                update["$unset"] = to_unset
        changes["updated_at"] = datetime.now(UTC)
        update["$set"] = changes
        await self.tenants.update_one({"_id": key}, update)
        # Status, retention, limits...: every process drops what it cached of the tenant.
        await self.invalidations.publish(Invalidation(key))
        return await self.get(principal, key)

    async def disable(self, principal: Principal, key: str) -> dict[str, Any]:
        _require_platform(principal, "disable a tenant")
        await self.get(principal, key)
        now = datetime.now(UTC)
        await self.tenants.update_one(
            {"_id": key}, {"$set": {"status": TENANT_DISABLED, "updated_at": now}}
        )
        await self.invalidations.publish(Invalidation(key))
        return await self.get(principal, key)

    async def create_key(
        self, principal: Principal, tenant: str, data: ApiKeyCreate
    ) -> tuple[dict[str, Any], str]:
        await self.get(principal, tenant)
        secret = new_secret()
        doc = {
            "_id": new_key_id(),
            "tenant": tenant,
            "name": data.name,
            "role": data.role.value,
            "secret_hash": hash_secret(secret),
            "created_at": datetime.now(UTC),
            "last_used_at": None,
            "revoked_at": None,
        }
        await self.keys.insert_one(doc)
        return doc, secret

    async def list_keys(self, principal: Principal, tenant: str) -> list[dict[str, Any]]:
        await self.get(principal, tenant)
        cursor = self.keys.find({"tenant": tenant}).sort("created_at", ASCENDING)
        return await cursor.to_list()

    async def revoke_key(self, principal: Principal, tenant: str, key_id: str) -> None:
        await self.get(principal, tenant)
        result = await self.keys.update_one(
            {"_id": key_id, "tenant": tenant, "revoked_at": None},
            {"$set": {"revoked_at": datetime.now(UTC)}},
        )
        if result.matched_count == 0:
            exists = await self.keys.count_documents({"_id": key_id, "tenant": tenant})
            if not exists:
                raise NotFound(f"No API key '{key_id}' in tenant '{tenant}'.")
        # Announced again for a key revoked before: harmless, and a way to make sure.
        await self.invalidations.publish(Invalidation(tenant, key_id))
