"""What the log service keeps on its app, typed; set at start-up (services/log/app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from services.core.limitstore import StoreGuard
from services.core.tenantpolicy import TenantPolicies
from services.core.web.state import service_state, state_dependency
from services.log.admission import IngestAdmission
from services.log.batcher import IngestBatcher
from services.log.querygate import QueryGate
from services.log.repository import LogRepository
from services.log.settings import LogSettings


@dataclass(frozen=True, slots=True)
class LogState:
    settings: LogSettings
    repo: LogRepository
    # The tenant's retention and limits, one cached read of its document.
    policies: TenantPolicies
    limit_guard: StoreGuard
    admission: IngestAdmission
    query_gate: QueryGate
    batcher: IngestBatcher


def log_state(conn: HTTPConnection) -> LogState:
    return service_state(conn.app, LogState)


LogService = Annotated[LogState, Depends(state_dependency(LogState))]
