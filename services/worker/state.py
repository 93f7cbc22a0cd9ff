"""What the worker keeps on its app, typed; set at start-up (app.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.worker.consumer import Consumer


@dataclass(slots=True)
class WorkerState:
    consumer: Consumer
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Started once the indexes exist (a start-up task); None until then.
    retention: asyncio.Task[None] | None = None
    dead_letters: asyncio.Task[None] | None = None
    rollups: asyncio.Task[None] | None = None
