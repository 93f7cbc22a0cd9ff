"""After a batch is stored: its events to the live tail (PUBLISH) and the recent-events rings.

Best effort: the storage already has the events. One Redis pipeline per batch. The
ring (services/core/logs/ring.py) gets only the events this batch newly stored, each
once; a tenant whose ring may have missed events (a redelivery, Redis failing) is
invalidated so the broadcast service rebuilds it from the storage.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import redis.asyncio as redis

from services.core.logs import ring
from services.core.logs.model import document_to_api
from services.worker.messages import Decoded

log = logging.getLogger(__name__)


class LivePublisher:
    def __init__(self, redis_client: redis.Redis, ring_size: int) -> None:
        self.redis = redis_client
        self.ring_size = ring_size
        # tenants whose ring missed events while Redis failed: invalidated once it works
        self._ring_stale: set[str] = set()

    async def publish(
        self, done: list[Decoded], docs: list[dict[str, Any]], new: list[int] | None
    ) -> None:
        """Publish the stored messages' events to their tenants' channels and add the
        newly stored ones (``new``: indexes into ``docs``) to the rings, in one pipeline."""
        by_tenant: dict[str, list[bytes]] = {}
        for d in done:
            # the API shape, as search returns it: with the tenant
            by_tenant.setdefault(d.tenant_id, []).extend(
                orjson.dumps({**e, "tenant_id": d.tenant_id}) for e in d.events
            )
        # The ring gets only the events stored now, each once, as the storage returns
        # them. A batch with events stored before (a redelivery: its first worker may
        # have died before adding them) leaves the tenant's ring to be rebuilt.
        members: dict[str, list[tuple[bytes, int]]] = {}
        stale = set(self._ring_stale)
        if self.ring_size:
            fresh = set(new) if new is not None else set()
            for i, doc in enumerate(docs):
                if i in fresh:
                    api = document_to_api(doc)
                    members.setdefault(doc["tenant_id"], []).append(
                        (orjson.dumps(api), ring.score(api))
                    )
                else:
                    stale.add(doc["tenant_id"])
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for tenant_id in stale:
                    ring.invalidate(pipe, tenant_id)
                for tenant_id, events in by_tenant.items():
                    ring.add(pipe, tenant_id, members.get(tenant_id, []), self.ring_size)
                    pipe.publish(f"logs:{tenant_id}", b"[" + b",".join(events) + b"]")
                await pipe.execute()
            self._ring_stale -= stale
        except Exception as exc:  # live tail is best effort; storage already succeeded
            self._ring_stale |= stale | set(members)
            log.warning("publish failed", extra={"error": str(exc)[:300]})
