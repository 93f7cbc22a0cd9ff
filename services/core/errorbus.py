"""Publishes unhandled errors and lost backends on Redis `logserver:errors`.

Operators watch it live (`redis-cli subscribe logserver:errors`), as in the
original Node design. Publishing is best effort: it never raises and never
waits long, because it runs exactly when something is already going wrong.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as redis

ERRORS_CHANNEL = "logserver:errors"
log = logging.getLogger(__name__)


class ErrorBus:
    def __init__(self, service: str, client: redis.Redis | None) -> None:
        self.service = service
        self.client = client

    async def publish(self, kind: str, detail: str, **extra: Any) -> None:
        if self.client is None:
            return
        event = {
            "service": self.service,
            "kind": kind,
            "detail": detail,
            "at": datetime.now(UTC).isoformat(),
            **extra,
        }
        try:
            await asyncio.wait_for(
                self.client.publish(ERRORS_CHANNEL, orjson.dumps(event, default=str)), 1.0
            )
        except Exception as exc:  # Redis itself may be the thing that is down.
            log.debug("could not publish error event: %s", exc)
