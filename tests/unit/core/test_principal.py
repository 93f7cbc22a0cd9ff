"""Which tenant a request acts on: platform admin vs tenant-bound tokens."""

from __future__ import annotations

import pytest

from services.core.errors import BadRequest, Forbidden
from services.core.principal import Principal
from services.core.rbac import PLATFORM_TENANT


def make(tenant_claim: str = "acme", role: str = "viewer") -> Principal:
    return Principal(
        sub="lsk_1", tenant_claim=tenant_claim, role=role, jti="j1", expires_at=2_000_000_000
    )


def test_platform_admin_is_admin_role_with_platform_tenant() -> None:
    assert make(PLATFORM_TENANT, "admin").is_platform_admin
    assert not make("acme", "admin").is_platform_admin
    assert not make(PLATFORM_TENANT, "viewer").is_platform_admin


def test_platform_admin_with_header_acts_on_that_tenant() -> None:
    p = make(PLATFORM_TENANT, "admin").acting_on("globex")
    assert p.tenant == "globex"
    assert p.require_tenant() == "globex"
    # The token's own identity is kept.
    assert (p.sub, p.tenant_claim, p.role, p.jti, p.expires_at) == (
        "lsk_1",
        PLATFORM_TENANT,
        "admin",
        "j1",
        2_000_000_000,
    )


def test_platform_admin_header_is_stripped() -> None:
    assert make(PLATFORM_TENANT, "admin").acting_on("  globex ").tenant == "globex"


@pytest.mark.parametrize("header", [None, ""])
def test_platform_admin_without_header_is_platform_wide(header: str | None) -> None:
    p = make(PLATFORM_TENANT, "admin").acting_on(header)
    assert p.tenant is None
    with pytest.raises(BadRequest) as info:
        p.require_tenant()
    assert "X-Tenant-ID" in info.value.detail
    assert info.value.status == 400


def test_platform_admin_whitespace_header_is_no_tenant() -> None:
    p = make(PLATFORM_TENANT, "admin").acting_on("   ")
    with pytest.raises(BadRequest):
        p.require_tenant()


@pytest.mark.parametrize("header", [None, "", "acme", " acme "])
@pytest.mark.parametrize("role", ["admin", "auditor", "viewer", "writer"])
def test_tenant_bound_token_acts_on_its_own_tenant(header: str | None, role: str) -> None:
    p = make("acme", role).acting_on(header)
    assert p.tenant == "acme"
    assert p.require_tenant() == "acme"


@pytest.mark.parametrize("role", ["admin", "auditor", "viewer", "writer"])
def test_tenant_bound_token_with_other_tenant_is_forbidden(role: str) -> None:
    with pytest.raises(Forbidden) as info:
        make("acme", role).acting_on("globex")
    assert info.value.status == 403
    assert "acme" in info.value.detail and "globex" in info.value.detail


def test_acting_on_returns_a_new_principal() -> None:
    original = make("acme")
    resolved = original.acting_on(None)
    assert original.tenant is None
    assert resolved is not original
    assert resolved.tenant == "acme"
