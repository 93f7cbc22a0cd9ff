"""Two-phase key rotation across auth replicas: publish first, sign later.

The schedule is shared through MongoDB (collection ``signing_keys``), one
document per key id, public half only (private keys never leave the key
files)::

    {_id: kid, jwk: {...}, published_at, signs_from, signed_until}

The first replica that sees a key records ``published_at = now`` and
``signs_from = now + activation``; later replicas keep that record. Every
replica re-reads its key directory and the schedule every ``jwt_keys_sync_seconds``,
publishes every scheduled key that is coming or may still have live tokens
(also before its own copy of the key file arrives: a Kubernetes Secret reaches
pods minutes apart), and notes ``signed_until = now`` for the key it signs
with, which keeps that key published for a token lifetime after its last use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.auth.keys import KeyRing, Scheduled, read_keys

SIGNING_KEYS = "signing_keys"
log = logging.getLogger(__name__)


def _scheduled(doc: dict[str, Any]) -> Scheduled:
    return Scheduled(
        kid=doc["_id"],
        jwk=doc["jwk"],
        signs_from=doc["signs_from"],
        signed_until=doc.get("signed_until"),
    )


class KeySchedule:
    """The ``signing_keys`` collection: records new keys, reports use, reads all."""

    def __init__(self, db: AsyncDatabase, *, activation: timedelta) -> None:
        self.keys = db[SIGNING_KEYS]
        self.activation = activation

    async def sync(self, ring: KeyRing, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        for key in ring.keys:
            if key.kid in ring.schedule:
                continue
            # Another replica may have seen it first: then its times stand.
            with contextlib.suppress(DuplicateKeyError):
                await self.keys.insert_one(
                    {
                        "_id": key.kid,
                        "jwk": key.jwk,
                        "published_at": now,
                        "signs_from": now + self.activation,
                    }
                )
        signing = ring.signing_at(now)
        await self.keys.update_one({"_id": signing.kid}, {"$set": {"signed_until": now}})
        docs = await self.keys.find({}).to_list()
        ring.apply_schedule(_scheduled(d) for d in docs)


class KeyKeeper:
    """Keeps one replica's key ring current: key files, then the shared schedule."""

    def __init__(self, ring: KeyRing, directory: Path, schedule: KeySchedule) -> None:
        self.ring = ring
        self.directory = directory
        self.schedule = schedule
        self._signing = ""
        self._schedule_down = False
        self._tried = False

    async def probe(self) -> None:
        """Readiness: keys loaded, and the shared schedule tried once. Before that a
        replica (a pod of a rolling update) would publish only its own files and could
        reject tokens signed with a key whose file has been removed already."""
        await self.ring.probe()
        if not self._tried:
            raise RuntimeError("the key schedule has not been read yet")

    async def refresh(self) -> None:
        known = {k.private_pem: k for k in self.ring.keys}
        try:
            keys = await asyncio.to_thread(read_keys, self.directory, known)
        except (OSError, ValueError) as exc:
            log.error("cannot read the key directory", extra={"error": str(exc)[:300]})
            keys = []
        if not keys:
            log.warning("no key files found; keeping the keys loaded before")
        before = {k.kid for k in self.ring.keys}
        self.ring.replace_keys(keys)
        for key in self.ring.keys:
            if key.kid not in before:
                log.info("signing key loaded and published", extra={"kid": key.kid})
        try:
            await self.schedule.sync(self.ring)
            if self._schedule_down:
                log.info("key schedule readable again")
            self._schedule_down = False
        except Exception as exc:
            if not self._schedule_down:
                log.warning(
                    "key schedule unreachable; keeping the last one (no new key signs)",
                    extra={"error": str(exc)[:300]},
                )
            self._schedule_down = True
        self._tried = True
        self._note_signing_change()

    def _note_signing_change(self) -> None:
        signing = self.ring.signing
        if signing.kid == self._signing:
            return
        previous = self.ring.schedule.get(self._signing)
        if previous is not None:
            until = previous.published_until(self.ring.retain)
            log.info(
                "key no longer signs here; it stays published until its last token expired: "
                "at `until` unless a replica still signs with it (remove its file after that)",
                extra={"kid": previous.kid, "until": until.isoformat()},
            )
        log.info("signing with key", extra={"kid": signing.kid, "file": signing.name})
        self._signing = signing.kid

    async def run(self, every: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("key refresh failed")
            await asyncio.sleep(every)
