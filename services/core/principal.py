"""Who is calling, and which tenant a request acts on."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.errors import BadRequest, Forbidden
from services.core.rbac import PLATFORM_TENANT, Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified claims of a bearer token, plus the tenant this request acts on."""

    sub: str
    tenant_claim: str
    role: str
    jti: str
    expires_at: int
    tenant: str | None = None  # resolved target tenant (None: platform-wide request)

    @property
    def is_platform_admin(self) -> bool:
        return self.role == Role.ADMIN and self.tenant_claim == PLATFORM_TENANT

    def acting_on(self, requested: str | None) -> Principal:
        """Resolve the target tenant from the token and an optional ``X-Tenant-ID``.

        A platform admin may name any tenant (or none, for platform-wide calls);
        every other token is bound to its own tenant and a different header is
        refused rather than silently ignored.
        """
        requested = (requested or "").strip() or None
        if self.is_platform_admin:
            target = requested
        elif requested and requested != self.tenant_claim:
            raise Forbidden(
                f"This token belongs to tenant '{self.tenant_claim}' and cannot act on "
                f"'{requested}'. Only a platform admin may choose a tenant with X-Tenant-ID."
            )
        else:
            target = self.tenant_claim
        return Principal(self.sub, self.tenant_claim, self.role, self.jti, self.expires_at, target)

    def require_tenant(self) -> str:
        """The target tenant of a tenant-scoped call (logs); a platform admin must name one."""
        if self.tenant is None:
            raise BadRequest(
                "A platform admin token must name the tenant to act on: send the "
                "X-Tenant-ID header with the tenant key."
            )
        return self.tenant
