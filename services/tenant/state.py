"""What the tenant service keeps on its app, typed; set at start-up (app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from services.core.state import service_state
from services.tenant.store import TenantStore


@dataclass(frozen=True, slots=True)
class TenantState:
    store: TenantStore


def tenant_store(conn: HTTPConnection) -> TenantStore:
    return service_state(conn.app, TenantState).store
