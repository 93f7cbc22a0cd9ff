"""Pure validation and normalization of incoming events (docs/architecture.md#data-model).

Accepts the field names of every system this replaces (``severity``,
``app_name``, ``datetime``, ``msg``...) and keeps unknown top-level fields under
``attributes`` instead of dropping them. Hand-written rather than a pydantic
model: this is the hottest path of ingest, and each error must name its field.
"""

from __future__ import annotations

import functools
import os
import random
import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.core.logs.model import (
    LEVEL_ALIASES,
    OBJECT_FIELDS,
    STORED_DOT,
    STRING_FIELDS,
    iso,
    parse_level,
)

MAX_EVENT_BYTES = 256 * 1024
MAX_MESSAGE_CHARS = 64 * 1024
MAX_ID_CHARS = 128
MAX_FIELD_CHARS = 4096
MAX_DEPTH = 8
MAX_KEYS = 256
# BSON integers are 64-bit signed; orjson parses unsigned 64-bit ones too, which the
# storage driver then refuses to encode (the whole batch, on every redelivery).
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# How far ahead of the server's clock a timestamp may be: a day covers any time zone
# mistake of a client, and an event from further ahead would head every newest-first
# view until its time comes.
MAX_FUTURE = timedelta(days=1)
# Ids must be usable as the last segment of GET /api/v1/logs/{id}: no '/' and no
# control character, and none of the names the gateway or the log service route
# themselves under /api/v1/logs/ (tests/unit/log/test_events.py keeps this list
# equal to the routes).
RESERVED_IDS = frozenset({".", "..", "stats", "export", "stream", "usage"})
_BAD_ID = re.compile(r"[/\x00-\x1f\x7f]")

ALIASES = {
    "severity": "level",
    "app_name": "service",
    "app": "service",
    "datetime": "timestamp",
    "@timestamp": "timestamp",
    "time": "timestamp",
    "msg": "message",
    "hostname": "host",
    "traceId": "trace_id",
    "spanId": "span_id",
    "actor": "user_id",
    "ip": "ip_address",
    "userAgent": "user_agent",
}
KNOWN = frozenset({"id", "level", "message", "timestamp", *STRING_FIELDS, *OBJECT_FIELDS})
SERVER_OWNED = frozenset({"tenant_id", "received_at"})  # never taken from a client
# Every field name a client may send that is not an attribute, to its canonical name:
# one dict lookup per key instead of an alias lookup and three set tests.
_FIELDS: dict[str, str] = {
    **{name: name for name in (*KNOWN, *SERVER_OWNED, "attributes")},
    **ALIASES,
}
# isinstance() with a tuple: a ``dict | list`` union is built again at every evaluation
# and tested more slowly (~3x a tuple); these run per field of every event.
_CONTAINERS = (dict, list)
_NUMBERS = (int, float)
# Canonical timestamps: the fast path checks a second's text once (the events of a
# request mostly fall in a few seconds), then the milliseconds by a set lookup.
_MILLIS_Z = frozenset(f".{i:03d}Z" for i in range(1000))
_seconds_seen: set[str] = set()
# The fast path of normalize() (see _plain): events whose keys are all canonical names,
# holding strings, or objects for the object fields and attributes.
_PLAIN_OBJECTS = frozenset({*OBJECT_FIELDS, "attributes"})
_PLAIN_STRING_KEYS = frozenset({"id", "level", "message", "timestamp", *STRING_FIELDS})
_PLAIN_KEYS = _PLAIN_STRING_KEYS | _PLAIN_OBJECTS
# Object values that need no check of their own (no nesting, no integer range).
_FLAT_VALUES = frozenset({str, float, bool, type(None)})
# Level spellings taken as they are; parse_level() also strips and lowercases.
PLAIN_LEVELS = {**{name: name for name in LEVEL_ALIASES.values()}, **LEVEL_ALIASES}
# What iso() writes; a timestamp already in this form is kept once it parses.
_CANONICAL_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# Ids of one millisecond: a random start drawn when the millisecond changes, then a
# counter (RFC 9562 §6.2, method 2: monotonic random). The state: the millisecond, the
# text of the id's first 24 hex digits, the next value of its last 48 bits, and the text
# of all but the last two hex digits for the current run of 256 values (with its number).
_id_state: list[Any] = [-1, "", 0, "", -1]
_ID_VERSION_VARIANT = 0x7 << 76 | 0b10 << 62  # version 7, RFC 9562 variant
_ID_COUNTER_ROOM = 1 << 47  # the random start is below 2^47: 2^47 ids before a new start
_ID_LOW_BITS = (1 << 48) - 1
_HEX2 = tuple(f"{i:02x}" for i in range(256))


def _forget_id_state() -> None:
    # A forked child must not continue its parent's counter: both would make the same ids.
    _id_state[0] = -1


os.register_at_fork(after_in_child=_forget_id_state)


class EventError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TimeWindow:
    """The event times a tenant accepts right now, as canonical RFC 3339 strings.

    ``oldest`` is the tenant's retention cutoff (``None``: no retention): an older
    event would be deleted by the worker's next retention sweep, minutes after its
    202. ``newest`` bounds clock mistakes (:data:`MAX_FUTURE`). Canonical strings of
    years 1-9999 sort like the times they name, so checking one event is two string
    comparisons; the bounds are worked out once per request, and only if an event
    brings its own timestamp.
    """

    __slots__ = ("_bounds", "received_at", "retention_days")

    def __init__(self, received_at: str, retention_days: int) -> None:
        self.received_at = received_at  # canonical, as iso() writes it
        self.retention_days = retention_days
        self._bounds: tuple[str | None, str] | None = None

    def _compute(self) -> tuple[str | None, str]:
        # Whole days move only the date of a UTC time: the bounds are the received
        # time with another date, and the dates of one day's requests are reused.
        day, time_of_day = self.received_at[:10], self.received_at[10:]
        days = self.retention_days
        oldest = _shift_day(day, -days) + time_of_day if days > 0 else None
        self._bounds = (oldest, _shift_day(day, MAX_FUTURE.days) + time_of_day)
        return self._bounds

    def bounds(self) -> tuple[str | None, str]:
        """``(oldest, newest)``."""
        return self._bounds or self._compute()

    @property
    def oldest(self) -> str | None:
        return (self._bounds or self._compute())[0]

    @property
    def newest(self) -> str:
        return (self._bounds or self._compute())[1]

    def holds(self, first: str, last: str) -> bool:
        """Whether canonical timestamps from ``first`` to ``last`` all fall inside."""
        oldest, newest = self._bounds or self._compute()
        return last <= newest and (oldest is None or first >= oldest)

    def check(self, timestamp: str) -> None:
        oldest, newest = self._bounds or self._compute()
        if oldest is not None and timestamp < oldest:
            raise EventError(
                "timestamp",
                f"{timestamp} is older than this tenant's retention of "
                f"{self.retention_days} days (events before {oldest} are deleted); "
                "it would be deleted at once",
            )
        if timestamp > newest:
            raise EventError(
                "timestamp",
                f"{timestamp} is more than {MAX_FUTURE.days} day ahead of the server's "
                f"clock (latest accepted now: {newest}); check the sender's clock "
                "and time zone",
            )


@functools.lru_cache(maxsize=1024)
def _shift_day(day: str, days: int) -> str:
    """The ``YYYY-MM-DD`` date ``days`` days from ``day``'s (as :func:`iso` writes it)."""
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def new_event_id(now_ms: int | None = None) -> str:
    """A UUIDv7: time-ordered, so ids of one client sort roughly by arrival.

    The first id of a millisecond gets 74 random bits; the next ones of that
    millisecond count up from it in the last 48 bits (RFC 9562's monotonic
    random), so they also sort in the order they were made. Two processes share
    an id only if their random starts of one millisecond agree in 26 bits and
    their counted ranges (a few thousand in 2^47) meet. Formatting a number once per
    256 ids instead of 80 random bits per id took a 1,000-event bulk's ids from ~1 to ~0.3 µs
    each. The bits come from ``random`` (seeded from the OS at start and after a
    fork), not ``os.urandom``: an id must be unique, not secret (a client may send
    any id it likes), and a system call per event was a tenth of the bulk ingest's CPU.
    """
    ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    state = _id_state
    if state[0] != ms or state[2] > _ID_LOW_BITS:
        rand = random.getrandbits(74)
        high = _ID_VERSION_VARIANT | (rand >> 62) << 64 | ((rand >> 47) & ((1 << 14) - 1)) << 48
        h = f"{(ms & _ID_LOW_BITS) << 80 | high:032x}"
        state[0] = ms
        state[1] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-"
        state[2] = rand & (_ID_COUNTER_ROOM - 1)
        state[4] = -1
    low = state[2]
    state[2] = low + 1
    if low >> 8 != state[4]:  # a hex formatting per 256 ids; the last two digits from a table
        state[4] = low >> 8
        state[3] = f"{state[1]}{low >> 8:010x}"
    return state[3] + _HEX2[low & 0xFF]


def new_event_ids(count: int) -> list[str]:
    """``count`` ids as :func:`new_event_id` makes them, in order: the ids of one run of
    256 share their text but the last two digits, so a bulk's ids cost a string
    concatenation each (~5x less than a call per id)."""
    ids: list[str] = []
    state = _id_state
    while len(ids) < count:
        ids.append(new_event_id())
        low = state[2]  # the next value; its run is the current one unless it starts one
        room = min(count - len(ids), 256 - (low & 0xFF))
        if room > 0 and low >> 8 == state[4]:
            prefix = state[3]
            ids.extend([prefix + h for h in _HEX2[low & 0xFF : (low & 0xFF) + room]])
            state[2] = low + room
    return ids


def _is_canonical(timestamp: str) -> bool:
    """What :func:`iso` writes, and a valid time (no 31st of April)."""
    if _CANONICAL_TS.fullmatch(timestamp) is None:
        return False
    try:
        datetime.fromisoformat(timestamp)
    except ValueError:
        return False
    return True


_OUT_OF_RANGE = "out of range: in UTC it must fall between years 1 and 9999"


def _timestamp(value: Any) -> str:
    if isinstance(value, bool):
        raise EventError("timestamp", "must be an RFC 3339 string or epoch seconds/ms")
    if isinstance(value, _NUMBERS):
        seconds = value / 1000 if value > 1e11 else value  # epoch ms vs epoch s
        try:
            return iso(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError):
            raise EventError("timestamp", f"epoch value {_OUT_OF_RANGE}") from None
    if isinstance(value, str):
        canonical = _CANONICAL_TS.fullmatch(value) is not None
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise EventError(
                "timestamp", f"'{value[:40]}' is not RFC 3339 (e.g. 2026-01-31T12:00:00Z)"
            ) from None
        if canonical:
            return value  # already what iso() would return (valid: it parsed)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        try:
            return iso(dt)
        except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+14:00
            raise EventError("timestamp", f"'{value[:40]}' is {_OUT_OF_RANGE}") from None
    raise EventError("timestamp", "must be an RFC 3339 string or epoch seconds/ms")


def _check_int(field: str, value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise EventError(
            field, "integers must fit in 64 bits (-2^63 .. 2^63-1); send larger ones as strings"
        )


def _check_shape(field: str, value: Any, depth: int, counter: list[int]) -> None:
    """Depth, key count, key names, integer range and nested arrays: what the storage
    cannot hold is refused here, since the worker could only dead-letter it."""
    if depth > MAX_DEPTH:
        raise EventError(field, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        counter[0] += len(value)
        if counter[0] > MAX_KEYS:
            raise EventError(field, f"more than {MAX_KEYS} keys in one event")
        for key, item in value.items():
            # Most keys are identifiers, which hold no '$', U+FF0E or NUL: one C call for
            # them. A '.' is fine: the document shape stores it as U+FF0E (logmodel), so
            # a key already holding U+FF0E would read back as a different key.
            if not key.isidentifier() and (
                key.startswith("$") or STORED_DOT in key or "\x00" in key
            ):
                raise EventError(
                    f"{field}.{key}",
                    "keys may not start with '$' or contain '\uff0e' (U+FF0E) or NUL",
                )
            if isinstance(item, _CONTAINERS):
                _check_shape(f"{field}.{key}", item, depth + 1, counter)
            elif type(item) is int:  # not bool
                _check_int(f"{field}.{key}", item)
    else:
        for i, item in enumerate(value):
            if isinstance(item, list):
                # FerretDB v1 refuses arrays directly inside arrays; MongoDB stores them.
                raise EventError(
                    f"{field}[{i}]",
                    "an array directly inside an array cannot be stored; "
                    'wrap it in an object (e.g. [{"values": [1, 2]}])',
                )
            if isinstance(item, dict):
                _check_shape(f"{field}[{i}]", item, depth + 1, counter)
            elif type(item) is int:
                _check_int(f"{field}[{i}]", item)


def _check_id(event_id: str) -> None:
    if _BAD_ID.search(event_id):
        raise EventError(
            "id",
            "may not contain '/' or control characters (it is the last segment of "
            "GET /api/v1/logs/{id})",
        )
    if event_id in RESERVED_IDS:
        raise EventError(
            "id", f"'{event_id}' cannot be fetched as GET /api/v1/logs/{event_id}; choose another"
        )


def normalize(raw: Any, received_at: str, window: TimeWindow | None = None) -> dict[str, Any]:
    """Return the wire shape of one event, or raise :class:`EventError` naming the field.

    With ``window``, an explicit timestamp outside it is refused (see :class:`TimeWindow`).
    """
    if type(raw) is dict:
        out = _plain(raw, received_at, window)
        if out is not None:
            return out
    return _normalize_exactly(raw, received_at, window)


def _plain(
    raw: dict[str, Any], received_at: str, window: TimeWindow | None
) -> dict[str, Any] | None:
    """The common event, normalized with C-level checks: ``None`` for anything else.

    Taken here: canonical field names only (no alias, no server-owned or unknown
    top-level key), strings of at most :data:`MAX_FIELD_CHARS` in the string fields,
    a canonical timestamp inside ``window``, a level spelled as the table has it, and
    non-empty objects within :data:`MAX_KEYS`. Anything else, valid or not, returns
    ``None`` and goes through :func:`_normalize_exactly`, which alone raises: so
    the fast path refuses nothing and every error reads as before. Its result
    equals the exact path's, keys in the client's order after the first four.
    """
    if "message" not in raw and "action" not in raw:
        return None
    values = raw.values()
    if raw.keys().isdisjoint(_PLAIN_OBJECTS):  # (most events): every value a string
        if not raw.keys() <= _PLAIN_STRING_KEYS:
            return None
        try:
            # One C call checks they are all strings, and no longer together than one
            # may be alone; longer, each is measured.
            if len("".join(values)) > MAX_FIELD_CHARS and max(map(len, values)) > MAX_FIELD_CHARS:
                return None
        except TypeError:  # not all strings
            return None
    else:
        if not raw.keys() <= _PLAIN_KEYS:
            return None
        kinds = list(map(type, values))
        objects = raw.keys() & _PLAIN_OBJECTS
        # Every value not under an object field must be a string (objects: below).
        if kinds.count(str) + len(objects) != len(kinds):
            return None
        counter = [0]
        for name in objects:
            value = raw[name]
            if type(value) is not dict or not value:
                return None
            if set(map(type, value.values())) <= _FLAT_VALUES and all(map(str.isidentifier, value)):
                counter[0] += len(value)
            else:
                try:
                    _check_shape(name, value, 1, counter)
                except EventError:
                    return None
        # (an object's len() is its key count: at most MAX_KEYS here)
        if counter[0] > MAX_KEYS or max(map(len, values)) > MAX_FIELD_CHARS:
            return None
    event_id = raw.get("id")
    if event_id is None:
        event_id = new_event_id()
    elif not plain_id(event_id):
        return None
    timestamp = raw.get("timestamp")
    if timestamp is None:
        timestamp = received_at
    elif not plain_timestamp(timestamp, window):
        return None
    level = raw.get("level")
    if level is not None and (level := PLAIN_LEVELS.get(level)) is None:
        return None
    out = {"id": event_id, "timestamp": timestamp, "received_at": received_at, "level": "INFO"}
    out.update(raw)  # the client's timestamp and id are the texts checked above
    out["level"] = level or "INFO"
    return out


def plain_id(event_id: str) -> bool:
    """A client's id (a string) that the fast paths may take as it is."""
    return (
        0 < len(event_id) <= MAX_ID_CHARS
        and event_id not in RESERVED_IDS
        and _BAD_ID.search(event_id) is None
    )


def plain_timestamp(timestamp: str, window: TimeWindow | None) -> bool:
    """A client's timestamp (a string) that the fast paths may keep as it is:
    canonical (as :func:`iso` writes it), a valid time, and inside ``window``."""
    if not canonical_timestamp(timestamp):
        return False
    return window is None or window.holds(timestamp, timestamp)


def canonical_timestamp(timestamp: str) -> bool:
    """What :func:`iso` writes, and a valid time: the text of its second is checked
    once (the events of a request mostly fall in a few seconds), then the
    milliseconds by a set lookup."""
    if timestamp[19:] in _MILLIS_Z and timestamp[:19] in _seconds_seen:
        return True
    if not _is_canonical(timestamp):
        return False
    if len(_seconds_seen) >= 4096:
        _seconds_seen.clear()
    _seconds_seen.add(timestamp[:19])
    return True


def plain_keys(value: dict[str, Any]) -> bool:
    """Keys of a flat object the fast paths may take: all identifiers (one C call for
    the usual case), else none starting with '$' or holding U+FF0E or NUL."""
    return all(map(str.isidentifier, value)) or not any(
        key.startswith("$") or STORED_DOT in key or "\x00" in key for key in value
    )


def _normalize_exactly(
    raw: Any, received_at: str, window: TimeWindow | None = None
) -> dict[str, Any]:
    """:func:`normalize` for every shape: aliases, attributes at the top level,
    numbers in string fields, timestamps to convert, and every refusal."""
    if not isinstance(raw, dict):
        raise EventError("event", "each event must be a JSON object")
    event: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in raw.items():
        name = _FIELDS.get(key)
        if name is None:  # not a field of ours: an attribute
            if key in attributes:
                raise EventError(key, f"given as a top-level field and in attributes.{key}")
            attributes[key] = value
        elif name in SERVER_OWNED:
            if isinstance(value, _CONTAINERS):  # ignored, but bounded like everything else
                _check_shape(key, value, 1, [0])
        elif name == "attributes":
            if not isinstance(value, dict):
                raise EventError("attributes", "must be an object")
            if attributes and not attributes.keys().isdisjoint(value):
                inner = next(k for k in value if k in attributes)
                raise EventError(inner, f"given as a top-level field and in attributes.{inner}")
            attributes.update(value)
        else:
            # Containers are never compared: nesting is not bounded yet (a deep
            # comparison would exhaust the stack), and these fields take scalars anyway.
            if name in event and (isinstance(value, _CONTAINERS) or value != event[name]):
                raise EventError(key, f"conflicts with another spelling of '{name}'")
            event[name] = value

    out: dict[str, Any] = {}
    event_id = event.get("id")
    if event_id is None:
        out["id"] = new_event_id()
    else:
        if isinstance(event_id, int) and not isinstance(event_id, bool):
            event_id = str(event_id)
        if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID_CHARS:
            raise EventError("id", f"must be a non-empty string of at most {MAX_ID_CHARS} chars")
        _check_id(event_id)
        out["id"] = event_id
    if "timestamp" in event:
        out["timestamp"] = _timestamp(event["timestamp"])
        if window is not None:
            window.check(out["timestamp"])
    else:
        out["timestamp"] = received_at
    out["received_at"] = received_at

    level = event.get("level")
    if level is None:
        out["level"] = "INFO"
    elif isinstance(level, str) and (parsed := parse_level(level)):
        out["level"] = parsed
    else:
        raise EventError("level", "use DEBUG, INFO, WARNING (warn), ERROR or CRITICAL (fatal)")

    message = event.get("message")
    if message is not None:
        if not isinstance(message, str):
            raise EventError("message", "must be a string")
        if len(message) > MAX_MESSAGE_CHARS:
            raise EventError("message", f"longer than {MAX_MESSAGE_CHARS} characters")
        out["message"] = message
    for name in STRING_FIELDS:
        value = event.get(name)
        if value is None:
            continue
        if type(value) is not str:  # (the common case costs one test)
            if isinstance(value, _NUMBERS) and not isinstance(value, bool):
                value = str(value)
            elif not isinstance(value, str):
                raise EventError(name, "must be a string")
        if len(value) > MAX_FIELD_CHARS:
            raise EventError(name, f"longer than {MAX_FIELD_CHARS} characters")
        out[name] = value
    if "message" not in out and "action" not in out:
        raise EventError("message", "an event needs a message or an action")

    counter = [0]
    for name in OBJECT_FIELDS:
        value = event.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise EventError(name, "must be an object")
        _check_shape(name, value, 1, counter)
        out[name] = value
    if attributes:
        _check_shape("attributes", attributes, 1, counter)
        out["attributes"] = attributes
    return out
