"""What the broadcast service keeps on its app, typed; set at start-up (app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.broadcast.hub import Hub
from services.broadcast.settings import BroadcastSettings
from services.core.clients import Clients
from services.core.limitstore import StoreGuard
from services.core.logs.ring import Rebuilds
from services.core.slots import SlotLeases
from services.core.tenantpolicy import TenantPolicies
from services.core.web.state import state_dependency


@dataclass(slots=True)
class BroadcastState:
    settings: BroadcastSettings
    clients: Clients
    hub: Hub
    ring_rebuilds: Rebuilds
    # The tenant's limits (max_concurrent_tails), one cached read of its document.
    policies: TenantPolicies
    limit_guard: StoreGuard
    tail_leases: SlotLeases
    open_streams: int = 0  # this process's, against stream_max_connections


BroadcastService = Annotated[BroadcastState, Depends(state_dependency(BroadcastState))]
