"""Ingest's fast path for bulk bodies: the common events decoded, checked and
serialized by msgspec, in C, instead of parsed into dicts and checked in Python.

The exact path (``ingest.parse_bulk`` + ``events.normalize`` + the duplicate-key
count + ``orjson.dumps`` per event) costs ~6 µs per event of a typical bulk, most
of it Python operations per field. Here the body is decoded straight into
:data:`WireEvent`, whose field types are most of the checks (strings, their lengths,
flat objects of scalars, 64-bit integers, no unknown or server-owned top-level
field), and each struct is written back with its fields in the order
``normalize()`` writes them (~2.3 µs together, on the 2-core benchmark machine).
What a type cannot say (ids, timestamps, levels, object keys, the key count,
repeated keys) is checked afterwards, with the same helpers as ``events._plain``.

It refuses nothing: a body it does not take whole (an alias, a top-level attribute,
a number in a string field, a nested object, a null, an out-of-range value, a
repeated key, invalid JSON...) gives ``None`` and the caller runs the exact path,
which alone answers errors, so every error reads as before. What it does take is
what the exact path would have produced (tests/unit/log/test_fastdecode.py
compares both on generated and hand-picked bodies).
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter
from typing import Annotated, Any

import msgspec

from services.core.logs.model import KEYED_FIELDS, STRING_FIELDS
from services.log.duplicates import strings_in_text
from services.log.events import (
    INT64_MAX,
    INT64_MIN,
    MAX_EVENT_BYTES,
    MAX_FIELD_CHARS,
    MAX_ID_CHARS,
    MAX_KEYS,
    MAX_MESSAGE_CHARS,
    PLAIN_LEVELS,
    TimeWindow,
    canonical_timestamp,
    new_event_ids,
    plain_id,
    plain_keys,
)

UNSET: Any = msgspec.UNSET
_Unset = msgspec.UnsetType
_Text = Annotated[str, msgspec.Meta(max_length=MAX_FIELD_CHARS)]
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
_Message = Annotated[str, msgspec.Meta(max_length=MAX_MESSAGE_CHARS)]
_Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
# Flat objects only: a nested value is left to the exact path (depth, arrays in arrays).
_FlatObject = dict[str, str | _Int64 | float | bool | None]

# The event as sent, with the fields in the order normalize() writes them. Every field
# is optional (UNSET: absent, and left out when written back); ``received_at`` is
# server-owned: a client's string is decoded and overwritten (the exact path ignores it).
WireEvent: Any = msgspec.defstruct(
    "WireEvent",
    [
        ("id", _Id | _Unset, UNSET),
        ("timestamp", str | _Unset, UNSET),
        ("received_at", str | _Unset, UNSET),
        ("level", str | _Unset, UNSET),
        ("message", _Message | _Unset, UNSET),
        *((name, _Text | _Unset, UNSET) for name in STRING_FIELDS),
        *((name, _FlatObject | _Unset, UNSET) for name in KEYED_FIELDS),
    ],
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
)
_decode_one = msgspec.json.Decoder(WireEvent).decode
_decode_array = msgspec.json.Decoder(list[WireEvent]).decode
_encode = msgspec.json.Encoder().encode
_Failed = (msgspec.DecodeError, msgspec.ValidationError)
_OBJECTS = tuple(map(attrgetter, KEYED_FIELDS))
_ATTRIBUTES = attrgetter("attributes")


def decode_bulk(body: bytes, lines: bool) -> list[Any] | None:
    """The events of a JSON array, or with ``lines`` of NDJSON lines (blank ones
    skipped, as ``ingest.parse_bulk`` does); ``None`` for the exact path."""
    try:
        if not lines:
            return _decode_array(body)
        events = []
        for line in body.splitlines():
            if line.strip():
                if len(line) > MAX_EVENT_BYTES:
                    return None  # a 413 of the exact path
                events.append(_decode_one(line))
        return events
    except _Failed:
        return None


def finish(
    body: bytes, events: list[Any], received_at: str, window: TimeWindow
) -> tuple[list[bytes], list[str]] | None:
    """Normalize decoded ``events`` in place and serialize them: ``(encoded, ids)``,
    or ``None`` if any of them (or a repeated key in ``body``) needs the exact path.

    One loop with as few Python operations per event as it can (each costs ~30-50 ns
    and a request holds up to 10,000 events); the rest is done for all events at once:
    their ids are made together, their distinct timestamps checked once each and
    against the window as a range, their objects' keys column by column.
    """
    levels = PLAIN_LEVELS
    without_id: list[Any] = []
    stamps: list[str] = []
    added = 0  # strings (keys and values) the server adds: see the duplicate check below
    for event in events:
        if event.message is UNSET and event.action is UNSET:
            return None
        if event.id is UNSET:
            without_id.append(event)
        elif not plain_id(event.id):
            return None
        if event.timestamp is UNSET:
            event.timestamp = received_at
            added += 2
        else:
            stamps.append(event.timestamp)
        if event.level is UNSET:
            event.level = "INFO"
            added += 2
        elif (level := levels.get(event.level)) is None:
            return None
        else:
            event.level = level
        if event.received_at is UNSET:
            added += 2
        event.received_at = received_at
    if not _objects_fit(events):
        return None
    if stamps:
        distinct = set(stamps)  # a bulk's events often share their milliseconds
        if not all(map(canonical_timestamp, distinct)):
            return None
        if not window.holds(min(distinct), max(distinct)):
            return None
    if without_id:
        for event, new_id in zip(without_id, new_event_ids(len(without_id)), strict=True):
            event.id = new_id
        added += 2 * len(without_id)
    encoded = list(map(_encode, events))
    if max(map(len, encoded)) > MAX_EVENT_BYTES:
        return None
    # Repeated keys: msgspec keeps the last, like orjson, so count as duplicates.py does.
    # The written events hold the body's strings plus what the server added; fewer
    # means a key was repeated (the exact path finds and names it).
    if strings_in_text(b"".join(encoded)) - added != strings_in_text(body):
        return None
    return encoded, [event.id for event in events]


def _objects_fit(events: list[Any]) -> bool:
    """Keys the storage can hold, at most MAX_KEYS of them an event, and no empty
    ``attributes`` (which the exact path drops rather than stores). Column by column
    with C-level iteration (UNSET and empty objects are falsy: ``filter`` drops them):
    most events hold no object or a few identifier keys, checked in one call."""
    if {} in map(_ATTRIBUTES, events):
        return False
    objects = list(filter(None, chain.from_iterable(map(get, events) for get in _OBJECTS)))
    if not objects:
        return True
    if not all(map(str.isidentifier, chain.from_iterable(objects))) and not all(
        map(plain_keys, objects)
    ):
        return False
    if max(map(len, objects)) > MAX_KEYS // len(_OBJECTS):
        for event in events:
            held = (event.before, event.after, event.metadata, event.attributes)
            if sum(len(value) for value in held if value is not UNSET) > MAX_KEYS:
                return False
    return True
