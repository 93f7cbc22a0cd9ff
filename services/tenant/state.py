"""What the tenant service keeps on its app, typed; set at start-up (app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from services.core.web.state import service_state
from services.tenant.repository import TenantRepository


@dataclass(frozen=True, slots=True)
class TenantState:
    store: TenantRepository


def tenant_repository(conn: HTTPConnection) -> TenantRepository:
    return service_state(conn.app, TenantState).store
