"""Write-time rollups of the `logs` collection: event counts per tenant, minute (hour
for older events), level and service, exact under redelivery, crashes, cleanup and
retention.

The storage is written only with inserts and deletes, never updated in place:
FerretDB v1 runs every update as a scan of its whole collection (0.2 s per update
on 20,000 documents, measured), while an insert or an ``_id`` read is cheap.

Documents in `log_rollups` (``c`` maps a count key to a count; a key is
``m<epoch>:<level>[:<service, percent-quoted>]`` for a minute and ``h<epoch>:…``
for an hour):

- *delta* ``{_id: "{tenant}:{day}:d:{token}", tenant_id, day, c}``: the events one
  worker batch newly stored (or, negative, one cleanup chunk deleted), split by UTC
  day. The ``_id`` is derived from the batch's token, so writing it again is a
  duplicate-key no-op: that is what makes the counting idempotent.
- *base* ``{_id: "{tenant}:{day}:b:{v}", …, v, absorbed: [delta ids]}``: a day's
  deltas merged by :func:`compact` (minutes older than ``minute_age`` become hours).
  Inserting version ``v+1`` is the compare-and-set: two compactions cannot both win.
  Readers take a day's newest base plus the deltas it did not absorb.

Documents in `log_rollup_pending` (small: only work in progress):

- *attempt* ``{_id: "{tenant}:i:{token}", tenant_id, at, minutes}``: written before a
  batch's ``insert_many``, deleted after its deltas. Every event the batch newly
  stores carries ``ra: token``, so the events a batch inserted are known even after
  a crash; an attempt older than the lease is a worker that died, and
  :func:`recover` counts its events (``ra``) into the same delta ids.
- *cleanup* ``{_id: "{tenant}:c:{token}", tenant_id, at, ids, c}``: written before a
  delete of the listed event ids, with their negative counts; after the delete
  the negative delta is written and the marker removed. A marker left by a crash
  is finished by :func:`recover` (delete the ids again, write the delta).
- *lock* ``{_id: "{tenant}:lock", at}``: one delete (cleanup, retention) per tenant
  at a time, so the deleted ids are exactly the ones counted.

Readers treat the minutes of a dead attempt or of a cleanup in progress as
*dirty* and count them from the events; everything else comes from the rollups.

Modules: ``storage`` (collections, indexes, count keys, delta documents),
``writer`` (the worker's batches), ``reads`` (what the rollups answer),
``deletes`` (counted cleanup and retention), ``maintenance`` (recovery,
compaction, backfill). Import from the package: it re-exports their public names.
"""

from __future__ import annotations

from services.core.logs.rollups.deletes import (
    delete_counted,
    tenant_lock,
)
from services.core.logs.rollups.maintenance import (
    backfill,
    compact,
    recover,
)
from services.core.logs.rollups.reads import (
    Plan,
    answerable,
    current,
    day_query,
    dirty_minutes,
    is_ready,
    merge,
    plan,
    ranges_query,
)
from services.core.logs.rollups.storage import (
    BACKFILL_ID,
    DAY,
    DELETE_CHUNK,
    DUPLICATE_KEY,
    MAX_TIME,
    MIN_TIME,
    PENDING,
    PENDING_INDEXES,
    ROLLUP_INDEXES,
    ROLLUPS,
    count_key,
    delta_docs,
    doc_key,
    parse_key,
    split_by_day,
    token,
)
from services.core.logs.rollups.writer import (
    Attempt,
    RollupWriter,
)

__all__ = [
    "BACKFILL_ID",
    "DAY",
    "DELETE_CHUNK",
    "DUPLICATE_KEY",
    "MAX_TIME",
    "MIN_TIME",
    "PENDING",
    "PENDING_INDEXES",
    "ROLLUPS",
    "ROLLUP_INDEXES",
    "Attempt",
    "Plan",
    "RollupWriter",
    "answerable",
    "backfill",
    "compact",
    "count_key",
    "current",
    "day_query",
    "delete_counted",
    "delta_docs",
    "dirty_minutes",
    "doc_key",
    "is_ready",
    "merge",
    "parse_key",
    "plan",
    "ranges_query",
    "recover",
    "split_by_day",
    "tenant_lock",
    "token",
]
