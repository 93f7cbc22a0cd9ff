"""normalize(): aliases, levels, attributes, ids, timestamps, limits and shapes."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta

import pytest

from services.cli.synthetic import EventGenerator
from services.core.logs.model import OBJECT_FIELDS, STRING_FIELDS, iso
from services.log import events
from services.log.events import (
    MAX_DEPTH,
    MAX_FIELD_CHARS,
    MAX_FUTURE,
    MAX_ID_CHARS,
    MAX_KEYS,
    MAX_MESSAGE_CHARS,
    RESERVED_IDS,
    EventError,
    TimeWindow,
    new_event_id,
    normalize,
)
from tests.support.event_shapes import UNCOMMON_EVENTS

RECEIVED = "2026-02-01T08:00:00.000Z"


def norm(**fields):
    return normalize(fields, RECEIVED)


def error_of(raw) -> EventError:
    with pytest.raises(EventError) as info:
        normalize(raw, RECEIVED)
    return info.value


# --- aliases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "value", "field", "expected"),
    [
        ("severity", "error", "level", "ERROR"),
        ("app_name", "billing", "service", "billing"),
        ("app", "billing", "service", "billing"),
        ("datetime", "2026-01-31T12:00:00Z", "timestamp", "2026-01-31T12:00:00.000Z"),
        ("@timestamp", "2026-01-31T12:00:00Z", "timestamp", "2026-01-31T12:00:00.000Z"),
        ("time", "2026-01-31T12:00:00Z", "timestamp", "2026-01-31T12:00:00.000Z"),
        ("hostname", "web-1", "host", "web-1"),
        ("traceId", "abc123", "trace_id", "abc123"),
        ("spanId", "def456", "span_id", "def456"),
        ("actor", "u-42", "user_id", "u-42"),
        ("ip", "10.0.0.1", "ip_address", "10.0.0.1"),
        ("userAgent", "curl/8.0", "user_agent", "curl/8.0"),
    ],
)
def test_alias_maps_to_canonical_field(alias, value, field, expected):
    out = normalize({"message": "m", alias: value}, RECEIVED)
    assert out[field] == expected
    assert alias not in out
    assert "attributes" not in out  # an alias is not an unknown field


def test_msg_alias_is_message():
    out = normalize({"msg": "hello"}, RECEIVED)
    assert out["message"] == "hello"
    assert "msg" not in out


def test_same_value_under_two_spellings_is_accepted():
    out = normalize({"msg": "a", "message": "a", "level": "ERROR", "severity": "ERROR"}, RECEIVED)
    assert out["message"] == "a"
    assert out["level"] == "ERROR"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"message": "m", "level": "INFO", "severity": "ERROR"}, "severity"),
        ({"severity": "ERROR", "level": "INFO", "message": "m"}, "level"),
        ({"message": "a", "msg": "b"}, "msg"),
        ({"message": "m", "service": "a", "app_name": "b"}, "app_name"),
        ({"message": "m", "app": "a", "app_name": "b"}, "app_name"),
        ({"message": "m", "timestamp": "2026-01-01T00:00:00Z", "time": 5}, "time"),
    ],
)
def test_conflicting_spellings_rejected(raw, field):
    err = error_of(raw)
    assert err.field == field
    assert "conflicts" in err.message


# --- levels -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("debug", "DEBUG"),
        ("DEBUG", "DEBUG"),
        ("trace", "DEBUG"),
        ("Info", "INFO"),
        ("notice", "INFO"),
        ("warn", "WARNING"),
        ("WARN", "WARNING"),
        ("Warning", "WARNING"),
        ("err", "ERROR"),
        ("ERROR", "ERROR"),
        ("crit", "CRITICAL"),
        ("fatal", "CRITICAL"),
        ("FATAL", "CRITICAL"),
        ("critical", "CRITICAL"),
        ("  error  ", "ERROR"),
    ],
)
def test_level_parsing(given, expected):
    assert norm(message="m", level=given)["level"] == expected


def test_level_defaults_to_info():
    assert norm(message="m")["level"] == "INFO"


@pytest.mark.parametrize("bad", ["verbose", "", 40, True, ["ERROR"], {"x": 1}])
def test_bad_level_rejected(bad):
    err = error_of({"message": "m", "level": bad})
    assert err.field == "level"


# --- attributes and server-owned fields -------------------------------------------------


def test_unknown_top_level_fields_go_to_attributes():
    out = normalize(
        {"message": "m", "processId": 7, "stage": "prod", "nested": {"k": [1, 2]}}, RECEIVED
    )
    assert out["attributes"] == {"processId": 7, "stage": "prod", "nested": {"k": [1, 2]}}
    for key in ("processId", "stage", "nested"):
        assert key not in out


def test_unknown_fields_merged_with_explicit_attributes():
    out = normalize({"message": "m", "stage": "prod", "attributes": {"version": "3"}}, RECEIVED)
    assert out["attributes"] == {"stage": "prod", "version": "3"}


def test_attributes_must_be_object():
    assert error_of({"message": "m", "attributes": [1]}).field == "attributes"
    assert error_of({"message": "m", "attributes": "x"}).field == "attributes"


def test_no_attributes_key_when_nothing_extra():
    assert "attributes" not in norm(message="m", service="s")


def test_tenant_id_and_received_at_from_body_ignored():
    out = normalize(
        {"message": "m", "tenant_id": "evil", "received_at": "1999-01-01T00:00:00Z"}, RECEIVED
    )
    assert "tenant_id" not in out
    assert "attributes" not in out  # dropped, not kept as attributes
    assert out["received_at"] == RECEIVED


def test_output_has_only_known_keys():
    out = normalize(
        {"message": "m", "level_no": 99, "_id": "x", "minute": 1, "service": "s"}, RECEIVED
    )
    assert set(out) == {
        "id",
        "timestamp",
        "received_at",
        "level",
        "message",
        "service",
        "attributes",
    }
    assert out["attributes"] == {"level_no": 99, "_id": "x", "minute": 1}


def test_not_an_object_rejected():
    for raw in ([], "x", 1, None):
        assert error_of(raw).field == "event"


# --- ids --------------------------------------------------------------------------------


def test_int_id_becomes_string():
    assert norm(message="m", id=123)["id"] == "123"


def test_string_id_kept():
    assert norm(message="m", id="abc-1")["id"] == "abc-1"


def test_id_at_limit_accepted():
    assert norm(message="m", id="x" * MAX_ID_CHARS)["id"] == "x" * MAX_ID_CHARS


@pytest.mark.parametrize("bad", ["", "x" * (MAX_ID_CHARS + 1), 1.5, True, ["a"], {"a": 1}])
def test_bad_id_rejected(bad):
    assert error_of({"message": "m", "id": bad}).field == "id"


def test_generated_id_is_uuid7():
    a = norm(message="m")["id"]
    b = norm(message="m")["id"]
    assert a != b
    for value in (a, b):
        u = uuid.UUID(value)
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert str(u) == value


def test_new_event_id_embeds_ms_and_is_time_ordered():
    base = 1_769_860_800_000
    ids = [new_event_id(base + i) for i in range(0, 50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for i, value in enumerate(ids):
        u = uuid.UUID(value)
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert u.int >> 80 == base + i


def test_new_event_id_same_ms_differs_in_random_bits():
    ids = {new_event_id(1000) for _ in range(100)}
    assert len(ids) == 100


# --- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00.000Z"),
        ("2026-01-31T14:30:00+02:30", "2026-01-31T12:00:00.000Z"),
        ("2026-01-31T07:00:00.250-05:00", "2026-01-31T12:00:00.250Z"),
        ("2026-01-31T12:00:00.123456Z", "2026-01-31T12:00:00.123Z"),
        ("2026-01-31T12:00:00", "2026-01-31T12:00:00.000Z"),  # naive → UTC
        ("2026-01-31 12:00:00.5", "2026-01-31T12:00:00.500Z"),
        ("2026-01-31T12:00:00.250Z", "2026-01-31T12:00:00.250Z"),  # canonical: kept as is
        ("2026-01-31 12:00:00.250Z", "2026-01-31T12:00:00.250Z"),  # same length, not canonical
        ("2026-W05-6T12:00:00.250Z", "2026-01-31T12:00:00.250Z"),  # ISO week date, 24 chars
        (0, "1970-01-01T00:00:00.000Z"),
        (1_769_860_800, "2026-01-31T12:00:00.000Z"),  # epoch seconds
        (1_769_860_800.5, "2026-01-31T12:00:00.500Z"),
        (1_769_860_800_123, "2026-01-31T12:00:00.123Z"),  # epoch ms
    ],
)
def test_timestamp_parsing(given, expected):
    assert norm(message="m", timestamp=given)["timestamp"] == expected


def test_timestamp_defaults_to_received_at():
    out = norm(message="m")
    assert out["timestamp"] == RECEIVED
    assert out["received_at"] == RECEIVED


@pytest.mark.parametrize(
    "bad", ["yesterday", "", "2026-13-01T00:00:00Z", "1769860800", True, None, [1], {"a": 1}, 1e30]
)
def test_bad_timestamp_rejected(bad):
    # note: unlike id/level, an explicit null timestamp is an error, not "absent"
    err = error_of({"message": "m", "timestamp": bad})
    assert err.field == "timestamp"


def test_nan_and_inf_timestamps_rejected():
    for bad in (float("nan"), float("inf"), float("-inf")):
        assert error_of({"message": "m", "timestamp": bad}).field == "timestamp"


# --- message / action -------------------------------------------------------------------


def test_message_or_action_required():
    err = error_of({"level": "INFO", "service": "s"})
    assert err.field == "message"
    out = norm(action="user.login")
    assert out["action"] == "user.login"
    assert "message" not in out


def test_message_must_be_string():
    assert error_of({"message": 5}).field == "message"
    assert error_of({"message": {"a": 1}}).field == "message"


def test_message_length_limit():
    assert len(norm(message="x" * MAX_MESSAGE_CHARS)["message"]) == MAX_MESSAGE_CHARS
    err = error_of({"message": "x" * (MAX_MESSAGE_CHARS + 1)})
    assert err.field == "message"


# --- string fields ----------------------------------------------------------------------


@pytest.mark.parametrize("name", STRING_FIELDS)
def test_string_field_length_limit(name):
    extra = {} if name == "action" else {"message": "m"}
    assert norm(**extra, **{name: "y" * MAX_FIELD_CHARS})[name] == "y" * MAX_FIELD_CHARS
    err = error_of({**extra, name: "y" * (MAX_FIELD_CHARS + 1)})
    assert err.field == name


@pytest.mark.parametrize("name", STRING_FIELDS)
def test_string_field_type(name):
    assert error_of({"message": "m", name: {"a": 1}}).field == name
    assert error_of({"message": "m", name: True}).field == name
    assert norm(message="m", **{name: 42})[name] == "42"


# --- object fields and shape limits ---------------------------------------------------


@pytest.mark.parametrize("name", OBJECT_FIELDS)
def test_object_fields_must_be_objects(name):
    assert norm(message="m", **{name: {"a": 1}})[name] == {"a": 1}
    for bad in ("x", [1], 3):
        assert error_of({"message": "m", name: bad}).field == name


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"message": "m", "metadata": {"$where": 1}}, "metadata.$where"),
        ({"message": "m", "before": {"a\uff0eb": 1}}, "before.a\uff0eb"),
        ({"message": "m", "after": {"ok": {"$gt": 1}}}, "after.ok.$gt"),
        ({"message": "m", "attributes": {"$set": 1}}, "attributes.$set"),
        ({"message": "m", "$inc": 1}, "attributes.$inc"),
        ({"message": "m", "dotted\uff0ekey": 1}, "attributes.dotted\uff0ekey"),
        ({"message": "m", "attributes": {"l": [{"$x": 1}]}}, "attributes.l[0].$x"),
    ],
)
def test_dollar_keys_and_the_stored_dot_rejected(raw, field):
    assert error_of(raw).field == field


def test_dotted_keys_are_kept_as_written():
    event = norm(message="m", **{"http.request.method": "GET"}, metadata={"a.b": {"c.d": 1}})
    assert event["attributes"] == {"http.request.method": "GET"}
    assert event["metadata"] == {"a.b": {"c.d": 1}}


def _nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("name", ["metadata", "attributes"])
def test_depth_limit(name):
    assert norm(message="m", **{name: _nested(MAX_DEPTH)})[name] == _nested(MAX_DEPTH)
    err = error_of({"message": "m", name: _nested(MAX_DEPTH + 1)})
    assert err.field == name + ".a" * MAX_DEPTH
    assert "deeper" in err.message


def test_depth_limit_through_lists():
    deep: object = 1
    for _ in range(MAX_DEPTH // 2):
        deep = [{"k": deep}]  # each list and each object is a level
    err = error_of({"message": "m", "attributes": {"l": deep}})
    assert err.field.startswith("attributes.l[0]")
    assert "deeper" in err.message


def test_key_count_limit_per_event():
    ok = {f"k{i}": i for i in range(MAX_KEYS)}
    assert len(norm(message="m", metadata=ok)["metadata"]) == MAX_KEYS
    err = error_of({"message": "m", "metadata": {f"k{i}": i for i in range(MAX_KEYS + 1)}})
    assert err.field == "metadata"
    assert str(MAX_KEYS) in err.message


def test_key_count_is_summed_across_object_fields():
    half = MAX_KEYS // 2
    raw = {
        "message": "m",
        "before": {f"b{i}": i for i in range(half)},
        "after": {f"a{i}": i for i in range(half)},
        "attributes": {"extra": 1},
    }
    assert error_of(raw).field == "attributes"


# --- what the storage cannot hold -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"message": "m", "attributes": {"x": [[1, 2]]}}, "attributes.x[0]"),
        ({"message": "m", "x": [1, []]}, "attributes.x[1]"),
        ({"message": "m", "metadata": {"a": [{"b": [0, [0]]}]}}, "metadata.a[0].b[1]"),
        ({"message": "m", "before": {"a": [[{"b": 1}]]}}, "before.a[0]"),
    ],
)
def test_arrays_inside_arrays_are_refused(raw, field):
    err = error_of(raw)
    assert err.field == field
    assert "array directly inside an array" in err.message


def test_arrays_of_objects_holding_arrays_are_kept():
    out = norm(message="m", x=[{"a": [1, 2]}, {"b": []}], y=[])
    assert out["attributes"] == {"x": [{"a": [1, 2]}, {"b": []}], "y": []}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"message": "m", "n": 2**63}, "attributes.n"),
        ({"message": "m", "n": 2**64 - 1}, "attributes.n"),
        ({"message": "m", "n": -(2**63) - 1}, "attributes.n"),
        ({"message": "m", "attributes": {"l": [1, 2**63]}}, "attributes.l[1]"),
        ({"message": "m", "after": {"a": {"b": 2**63}}}, "after.a.b"),
    ],
)
def test_integers_beyond_64_bits_are_refused(raw, field):
    err = error_of(raw)
    assert err.field == field
    assert "64 bits" in err.message


def test_integers_at_the_64_bit_limits_and_booleans_are_kept():
    out = norm(message="m", hi=2**63 - 1, lo=-(2**63), flag=True, l=[2**63 - 1, False])
    assert out["attributes"] == {
        "hi": 2**63 - 1,
        "lo": -(2**63),
        "flag": True,
        "l": [2**63 - 1, False],
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"message": "m", "a": {"k\x00": 1}}, "attributes.a.k\x00"),
        ({"message": "m", "metadata": {"$ref": 1}}, "metadata.$ref"),
    ],
)
def test_key_rules_still_hold_for_non_identifier_keys(raw, field):
    assert error_of(raw).field == field


def test_keys_that_are_not_identifiers_but_storable_are_kept():
    attrs = {"user-agent": 1, "ключ": 2, "a b": 3, "1st": 4, "@tag": 5, "k$": 6, "": 7}
    assert norm(message="m", attributes=attrs)["attributes"] == attrs


# --- conflicting duplicates after normalization -----------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        {"message": "m", "stage": "a", "attributes": {"stage": "b"}},
        {"message": "m", "attributes": {"stage": "b"}, "stage": "a"},
        {"message": "m", "stage": "a", "attributes": {"x": 1, "stage": "a"}},  # even equal
    ],
)
def test_top_level_field_and_attribute_of_the_same_name_are_refused(raw):
    """Merged into one ``attributes`` object, one of them would silently win."""
    err = error_of(raw)
    assert err.field == "stage"
    assert err.message == "given as a top-level field and in attributes.stage"


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "raw",
    [
        {"message": _deep(1000), "msg": _deep(1000)},  # compared for a conflict: no recursion
        {"message": "m", "x": _deep(1000), "attributes": {"x": _deep(1000)}},
        {"message": "m", "tenant_id": _deep(1000)},  # ignored, but not unbounded
        {"message": "m", "received_at": {"a": _deep(1000)}},
    ],
)
def test_deeply_nested_values_are_refused_without_exhausting_the_stack(raw):
    assert isinstance(error_of(raw), EventError)


# --- ids that could not be fetched ------------------------------------------------------


@pytest.mark.parametrize(
    "bad", ["a/b", "/", "a\x00b", "a\nb", "\t", "x\x1f", "x\x7f", *sorted(RESERVED_IDS)]
)
def test_ids_that_cannot_be_fetched_are_refused(bad):
    err = error_of({"message": "m", "id": bad})
    assert err.field == "id"
    assert "GET /api/v1/logs/" in err.message


@pytest.mark.parametrize(
    "good", ["a.b", "...", "stats2", "stream-1", "a b", "a?b#c%d", "é-ü", "a\\b", "x" * 128]
)
def test_ids_that_can_be_fetched_are_kept(good):
    assert norm(message="m", id=good)["id"] == good


def test_reserved_ids_are_the_get_routes_under_logs():
    """A route added under /api/v1/logs/ (log or broadcast service) must be reserved too."""
    from services.broadcast.routes import router as broadcast
    from services.log.routes import router as log

    segments = set()
    for router in (log, broadcast):
        for route in router.routes:
            rest = route.path.removeprefix("/api/v1/logs/")
            static = rest != route.path and "{" not in rest and "/" not in rest
            if static and "GET" in getattr(route, "methods", {"GET"}):  # a websocket: no methods
                segments.add(rest)
    assert segments == RESERVED_IDS - {".", ".."}


# --- timestamps out of range ----------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T13:59:59+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T12:00:00-12:00",
        -1e20,
        1e20,
        2**63,
    ],
)
def test_timestamps_outside_years_1_to_9999_in_utc_are_refused(bad):
    err = error_of({"message": "m", "timestamp": bad})
    assert err.field == "timestamp"
    assert "out of range" in err.message


def test_timestamps_at_the_ends_of_the_range_are_kept():
    assert norm(message="m", timestamp="0001-01-01T14:00:00+14:00")["timestamp"] == (
        "0001-01-01T00:00:00.000Z"
    )
    assert norm(message="m", timestamp="9999-12-31T09:59:59-14:00")["timestamp"] == (
        "9999-12-31T23:59:59.000Z"
    )


# --- the tenant's time window -----------------------------------------------------------

NOW = "2026-02-01T08:00:00.000Z"


def test_window_of_a_request():
    window = TimeWindow(NOW, 30)
    assert window.oldest == "2026-01-02T08:00:00.000Z"
    assert window.newest == "2026-02-02T08:00:00.000Z"
    assert window.retention_days == 30
    assert TimeWindow(NOW, 0).oldest is None  # kept forever: no lower bound


def test_event_older_than_the_retention_is_refused_naming_it():
    window = TimeWindow(NOW, 30)
    err = error_of_in({"message": "m", "timestamp": "2025-01-01T00:00:00Z"}, window)
    assert err.field == "timestamp"
    assert err.message == (
        "2025-01-01T00:00:00.000Z is older than this tenant's retention of 30 days "
        "(events before 2026-01-02T08:00:00.000Z are deleted); it would be deleted at once"
    )


@pytest.mark.parametrize(
    ("timestamp", "ok"),
    [
        ("2026-01-02T08:00:00.000Z", True),  # exactly at the cutoff
        ("2026-01-02T07:59:59.999Z", False),
        ("2026-01-02T09:59:59.999+02:00", False),  # the same instant with an offset
        (1_767_341_000, True),  # epoch seconds after the cutoff
        (1_767_340_000_000, False),  # epoch ms before it
        ("0001-01-01T00:00:00Z", False),
        ("2026-02-02T08:00:00.000Z", True),  # a day ahead: a sender's clock or zone
        ("2026-02-02T08:00:00.001Z", False),
        ("2026-02-02T10:00:00+01:00", False),
        ("9999-12-31T23:59:59Z", False),
    ],
)
def test_window_bounds(timestamp, ok):
    raw = {"message": "m", "timestamp": timestamp}
    window = TimeWindow(NOW, 30)
    if ok:
        assert normalize(raw, NOW, window)["timestamp"]
    else:
        assert error_of_in(raw, window).field == "timestamp"


def test_future_refusal_says_what_to_check():
    err = error_of_in({"message": "m", "time": "2027-01-01T00:00:00Z"}, TimeWindow(NOW, 30))
    assert "ahead of the server's clock" in err.message
    assert "2026-02-02T08:00:00.000Z" in err.message


def test_events_without_a_timestamp_are_always_inside_the_window():
    assert normalize({"message": "m"}, NOW, TimeWindow(NOW, 1))["timestamp"] == NOW


def test_without_retention_only_the_future_is_bounded():
    window = TimeWindow(NOW, 0)
    assert normalize({"message": "m", "timestamp": "0001-01-01T00:00:00Z"}, NOW, window)
    assert error_of_in({"message": "m", "timestamp": "2030-01-01T00:00:00Z"}, window)


def error_of_in(raw, window: TimeWindow) -> EventError:
    with pytest.raises(EventError) as info:
        normalize(raw, NOW, window)
    return info.value


@pytest.mark.parametrize(
    "received",
    ["2024-02-29T00:00:00.000Z", "2026-12-31T23:59:59.999Z", "2026-03-01T01:02:03.004Z"],
)
@pytest.mark.parametrize("days", [0, 1, 30, 365, 3650])
def test_the_window_bounds_are_the_received_time_moved_by_whole_days(
    received: str, days: int
) -> None:
    window = TimeWindow(received, days)
    now = datetime.fromisoformat(received)
    assert window.oldest == (iso(now - timedelta(days=days)) if days else None)
    assert window.newest == iso(now + MAX_FUTURE)


def test_ids_of_one_millisecond_sort_in_the_order_they_were_made():
    # Counted up from one random start (RFC 9562 monotonic random): a bulk's ids
    # sort like its events, and none repeats.
    ids = [new_event_id(1_769_860_800_000) for _ in range(600)]  # across 256-id runs
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    values = [uuid.UUID(i).int for i in ids]
    assert all(b - a == 1 for a, b in itertools.pairwise(values))
    for value in ids:
        u = uuid.UUID(value)
        assert (u.version, u.variant, str(u)) == (7, uuid.RFC_4122, value)


def test_ids_start_at_new_random_bits_in_each_millisecond_and_after_a_fork():
    a = new_event_id(1000)
    b = new_event_id(1001)
    events._forget_id_state()  # what a forked child runs
    c = new_event_id(1001)
    d = new_event_id(1001)
    assert uuid.UUID(a).int & ((1 << 74) - 1) != uuid.UUID(b).int & ((1 << 74) - 1)
    assert c != b and uuid.UUID(d).int - uuid.UUID(c).int == 1


# --- the fast path ------------------------------------------------------------------


def _exact_and_fast(raw, window=None):
    fast = events._plain(raw, RECEIVED, window) if type(raw) is dict else None
    return fast, events._normalize_exactly(raw, RECEIVED, window)


def test_the_fast_path_takes_generated_events_and_agrees_with_the_exact_one():
    window = TimeWindow(RECEIVED, 30)
    base = datetime(2026, 2, 1, 7, 0).timestamp()
    raws = EventGenerator(5, base_time=base, spread_seconds=3600).batch(500)
    for i, raw in enumerate(raws):
        raw["id"] = f"ev-{i}"  # the same id on both paths
        fast, exact = _exact_and_fast(raw, window)
        assert fast == exact, raw
    long = {"message": "m" * MAX_FIELD_CHARS, "host": "h" * MAX_FIELD_CHARS, "id": "x"}
    fast, exact = _exact_and_fast(long)  # longer together than one may be alone
    assert fast is not None
    assert fast == exact
    fast, exact = _exact_and_fast({"message": "m", "level": "warn"})  # no id, no timestamp
    assert fast is not None
    assert fast.pop("id") != exact.pop("id")
    assert (
        fast
        == exact
        == {
            "timestamp": RECEIVED,
            "received_at": RECEIVED,
            "level": "WARNING",
            "message": "m",
        }
    )


@pytest.mark.parametrize("raw", UNCOMMON_EVENTS)
def test_the_fast_path_leaves_every_other_shape_to_the_exact_one(raw):
    window = TimeWindow(RECEIVED, 30)
    assert events._plain(raw, RECEIVED, window) is None
    try:
        expected = events._normalize_exactly(raw, RECEIVED, window)
    except EventError as exc:
        assert str(error_of_window(raw, window)) == str(exc)
    else:
        got = normalize(raw, RECEIVED, window)
        got.pop("id"), expected.pop("id")
        assert got == expected


def error_of_window(raw, window) -> EventError:
    with pytest.raises(EventError) as info:
        normalize(raw, RECEIVED, window)
    return info.value
