"""Pure validation and normalization of incoming events (docs/architecture.md#data-model).

Accepts the field names of every system this replaces (``severity``,
``app_name``, ``datetime``, ``msg``...) and keeps unknown top-level fields under
``attributes`` instead of dropping them. Hand-written rather than a pydantic
model: this is the hottest path of ingest, and each error must name its field.
"""

from __future__ import annotations

import functools
import random
import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.core.logs.model import OBJECT_FIELDS, STORED_DOT, STRING_FIELDS, iso, parse_level

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
# What iso() writes; a timestamp already in this form is kept once it parses.
_CANONICAL_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# The text of the last millisecond's 48 time bits ("xxxxxxxx-xxxx-"): formatting only
# the 80 other bits per id took new_event_id from 1.3 to 0.9 µs.
# One tuple, swapped whole: a reader never sees one millisecond with another's text.
_id_millis: list[tuple[int, str]] = [(-1, "")]
_ID_VERSION_VARIANT = 0x7 << 76 | 0b10 << 62  # version 7, RFC 9562 variant


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

    @property
    def oldest(self) -> str | None:
        return (self._bounds or self._compute())[0]

    @property
    def newest(self) -> str:
        return (self._bounds or self._compute())[1]

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

    The 74 random bits come from ``random`` (seeded from the OS at start and
    after a fork), not ``os.urandom``: an id must be unique, not secret (a
    client may send any id it likes), and a system call per event was a tenth
    of the bulk ingest's CPU.
    """
    ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    cached = _id_millis[0]
    if cached[0] != ms:  # the events of one request mostly share their millisecond
        t = f"{ms & ((1 << 48) - 1):012x}"
        cached = _id_millis[0] = (ms, f"{t[:8]}-{t[8:]}-")
    rand = random.getrandbits(80)
    h = "%020x" % (_ID_VERSION_VARIANT | (rand >> 68) << 64 | (rand & ((1 << 62) - 1)))
    return f"{cached[1]}{h[:4]}-{h[4:8]}-{h[8:]}"


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
