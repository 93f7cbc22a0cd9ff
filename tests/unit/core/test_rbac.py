"""The roles table must be exactly the one documented in README.md#roles."""

from __future__ import annotations

import pytest

from services.core.rbac import ROLE_PERMISSIONS, Permission, Role, allows

# README.md#roles, row by row: which roles may do what.
DOCUMENTED_TABLE: dict[str, set[str]] = {
    "logs:write": {"admin", "writer"},  # ingest
    "logs:read": {"admin", "auditor", "viewer"},  # search, get, stats, tail
    "logs:export": {"admin", "auditor"},
    "logs:delete": {"admin"},  # cleanup
    "tenants:manage": {"admin"},  # tenants & API keys
}
ROLES = ("admin", "auditor", "viewer", "writer")


def test_roles_and_permissions_are_exactly_the_documented_ones() -> None:
    assert {r.value for r in Role} == set(ROLES)
    assert {p.value for p in Permission} == set(DOCUMENTED_TABLE)
    assert set(ROLE_PERMISSIONS) == set(Role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("permission", sorted(DOCUMENTED_TABLE))
def test_allows_matches_documented_table(role: str, permission: str) -> None:
    assert allows(role, Permission(permission)) is (role in DOCUMENTED_TABLE[permission])


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", set(DOCUMENTED_TABLE)),
        ("auditor", {"logs:read", "logs:export"}),
        ("viewer", {"logs:read"}),
        ("writer", {"logs:write"}),
    ],
)
def test_role_permission_sets(role: str, expected: set[str]) -> None:
    assert {p.value for p in ROLE_PERMISSIONS[Role(role)]} == expected


@pytest.mark.parametrize("role", ["", "root", "ADMIN", "Admin", " admin", "*", "superuser"])
@pytest.mark.parametrize("permission", list(Permission))
def test_unknown_role_is_never_allowed(role: str, permission: Permission) -> None:
    assert allows(role, permission) is False
