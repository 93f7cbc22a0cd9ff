"""Writing rollups (the worker): announce a batch, tag its events, count what it stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.core.logs.rollups.storage import (
    PENDING,
    ROLLUPS,
    _epoch,
    _insert_ignoring_duplicates,
    _renew,
    delta_docs,
    doc_key,
    token,
)

log = logging.getLogger(__name__)


@dataclass
class Attempt:
    """One worker batch: its token, and the minute keys of the events it newly stored."""

    token: str = field(default_factory=token)
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # tenant -> key -> n


class RollupWriter:
    """The worker's side: announce, insert (events tagged ``ra``), count.

    While a batch is in hand its markers are renewed every third of the lease, so
    only a worker that died (or froze for longer than the lease) leaves markers old
    enough for :func:`recover`.
    """

    def __init__(self, db: AsyncDatabase, lease: timedelta = timedelta(seconds=120)) -> None:
        self.db = db
        self.lease = lease

    @contextlib.asynccontextmanager
    async def attempt(self, docs: list[dict[str, Any]]) -> AsyncIterator[Attempt]:
        """:meth:`begin`, then keep the markers fresh until the block ends."""
        attempt = await self.begin(docs)
        ids = [f"{t}:i:{attempt.token}" for t in {d["tenant_id"] for d in docs}]
        beat = asyncio.create_task(_renew(self.db, ids, self.lease))
        try:
            yield attempt
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def begin(self, docs: list[dict[str, Any]]) -> Attempt:
        """Tag the documents with a new token and write the attempt markers."""
        attempt = Attempt()
        minutes: dict[str, set[int]] = {}
        for doc in docs:
            doc["ra"] = attempt.token
            minutes.setdefault(doc["tenant_id"], set()).add(_epoch(doc["minute"]))
        now = datetime.now(UTC)
        await self.db[PENDING].insert_many(
            [
                {
                    "_id": f"{t}:i:{attempt.token}",
                    "tenant_id": t,
                    "at": now,
                    "minutes": sorted(m),
                }
                for t, m in minutes.items()
            ],
            ordered=False,
        )
        return attempt

    async def finish(
        self, attempt: Attempt, docs: list[dict[str, Any]], new: Iterable[int]
    ) -> None:
        """Write the deltas of the newly stored documents, then drop the markers.

        If a recovery took this batch for dead (it froze for longer than the lease), it
        counted the batch's events it found stored then, left a receipt of those counts
        and removed the markers: only the difference is added then, under its own id.
        """
        for i in new:
            doc = docs[i]
            attempt.counts.setdefault(doc["tenant_id"], Counter())[doc_key(doc)] += 1
        tok = attempt.token
        markers = {t: f"{t}:i:{tok}" for t in {doc["tenant_id"] for doc in docs}}
        alive = {
            m["_id"]
            for m in await self.db[PENDING]
            .find({"_id": {"$in": list(markers.values())}}, {"_id": 1})
            .to_list()
        }
        deltas = [
            d
            for t, c in attempt.counts.items()
            if markers[t] in alive
            for d in delta_docs(t, tok, c)
        ]
        existed = await _insert_ignoring_duplicates(self.db[ROLLUPS], deltas)
        if existed:  # a recovery wrote them meanwhile: add what it could not see yet
            await self._top_up([deltas[i] for i in existed])
        for t, c in attempt.counts.items():
            if markers[t] not in alive:
                await self._after_recovery(t, tok, c)
        await self.db[PENDING].delete_many({"_id": {"$in": list(markers.values())}})

    async def _top_up(self, mine: list[dict[str, Any]]) -> None:
        fixes = []
        for d in mine:
            theirs = await self.db[ROLLUPS].find_one({"_id": d["_id"]}) or {"c": {}}
            diff = {k: n - theirs["c"].get(k, 0) for k, n in d["c"].items()}
            diff = {k: n for k, n in diff.items() if n > 0}
            if diff:
                fixes.append({**d, "_id": d["_id"] + "+", "c": diff})
        await _insert_ignoring_duplicates(self.db[ROLLUPS], fixes)
        log.warning("a batch outlived its rollup lease; recovered counts topped up")

    async def _after_recovery(self, tenant_id: str, tok: str, mine: Counter[str]) -> None:
        receipt = await self.db[PENDING].find_one({"_id": f"{tenant_id}:r:{tok}"})
        if receipt is None:
            log.error(
                "a batch outlived its rollup lease and its recovery receipt; its counts may "
                "be short",
                extra={"tenant": tenant_id},
            )
            return
        diff = Counter({k: n - receipt["c"].get(k, 0) for k, n in mine.items()})
        fixes = [{**d, "_id": d["_id"] + "+"} for d in delta_docs(tenant_id, tok, +diff)]
        await _insert_ignoring_duplicates(self.db[ROLLUPS], fixes)
        await self.db[PENDING].delete_one({"_id": receipt["_id"]})
        log.warning("a batch outlived its rollup lease; recovered counts topped up")
