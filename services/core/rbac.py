"""The one roles table (README.md#roles). Routes declare a permission; nothing else checks roles."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    AUDITOR = "auditor"
    VIEWER = "viewer"
    WRITER = "writer"


class Permission(StrEnum):
    LOGS_WRITE = "logs:write"  # ingest
    LOGS_READ = "logs:read"  # search, get, stats, tail
    LOGS_EXPORT = "logs:export"
    LOGS_DELETE = "logs:delete"  # cleanup
    TENANTS_MANAGE = "tenants:manage"  # tenants & API keys


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.AUDITOR: frozenset({Permission.LOGS_READ, Permission.LOGS_EXPORT}),
    Role.VIEWER: frozenset({Permission.LOGS_READ}),
    Role.WRITER: frozenset({Permission.LOGS_WRITE}),
}

PLATFORM_TENANT = "*"
"""The `tenant` claim of a platform admin: not bound to a tenant, may target any."""


def allows(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
