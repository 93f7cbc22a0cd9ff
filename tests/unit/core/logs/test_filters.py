"""Query-parameter filters: parsing, the MongoDB query, and the in-memory twin."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.core.errors import ValidationFailed
from services.core.logs.filters import (
    EXACT_FIELDS,
    MAX_SUBSTRING,
    LogFilter,
    _attribute_candidates,
    escape_regex,
    parse_params,
    parse_time,
)

OPTIONS = frozenset({"limit", "cursor", "sort"})
MONGO_OPERATORS = {"$in", "$gte", "$lt", "$regex", "$options"}


def parse(*pairs: tuple[str, str], options: frozenset[str] = OPTIONS):
    return parse_params(list(pairs), options)


def flt(*pairs: tuple[str, str]) -> LogFilter:
    return parse(*pairs).filter


def fields_of(exc: ValidationFailed) -> list[str]:
    return [e["field"] for e in exc.errors]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parse_params --------------------------------------------------------------------


def test_no_params_is_empty_filter():
    parsed = parse()
    assert parsed.filter == LogFilter()
    assert parsed.options == {}


def test_levels_repeatable_and_comma_separated():
    f = flt(("level", "error,WARN"), ("level", "fatal"), ("severity", "err"), ("level", "debug"))
    assert f.levels == ("ERROR", "WARNING", "CRITICAL", "DEBUG")


def test_severity_alias():
    assert flt(("severity", "warning")).levels == ("WARNING",)


def test_level_whitespace_after_comma():
    assert flt(("level", "error, info")).levels == ("ERROR", "INFO")


@pytest.mark.parametrize("value", ["loud", "", "error,", "error,,info"])
def test_bad_level(value):
    with pytest.raises(ValidationFailed) as info:
        parse(("level", value))
    assert fields_of(info.value) and set(fields_of(info.value)) == {"level"}


def test_min_level():
    assert flt(("min_level", "warn")).min_level == "WARNING"
    with pytest.raises(ValidationFailed) as info:
        parse(("min_level", "loud"))
    assert fields_of(info.value) == ["min_level"]


@pytest.mark.parametrize("name", EXACT_FIELDS)
def test_exact_fields(name):
    assert flt((name, "v-1")).exact == ((name, "v-1"),)


def test_substring_fields_map_to_stored_fields():
    f = flt(("q", "timeout"), ("user_agent", "Mozilla"))
    assert dict(f.substrings) == {"message": "timeout", "user_agent": "Mozilla"}


def test_attributes():
    f = flt(("attributes.processId", "42"), ("attributes.stage", "prod"))
    assert f.attributes == (("processId", "42"), ("stage", "prod"))


def test_options_separated_from_filters():
    parsed = parse(("limit", "10"), ("service", "api"), ("cursor", "abc"))
    assert parsed.options == {"limit": "10", "cursor": "abc"}
    assert parsed.filter.exact == (("service", "api"),)


def test_option_not_accepted_by_this_endpoint():
    with pytest.raises(ValidationFailed) as info:
        parse(("format", "csv"))
    assert fields_of(info.value) == ["format"]


def test_unknown_and_operator_params_rejected_all_listed():
    with pytest.raises(ValidationFailed) as info:
        parse(
            ("service[$ne]", "x"),
            ("attributes.$where", "1"),
            ("bogus", "1"),
            ("attributes.a..b", "1"),
            ("attributes.", "1"),
            ("attributes." + "k" * 129, "1"),
            ("attributes..a", "1"),
            ("attributes.a.", "1"),
            ("service", "ok"),
        )
    assert fields_of(info.value) == [
        "service[$ne]",
        "attributes.$where",
        "bogus",
        "attributes.a..b",
        "attributes.",
        "attributes." + "k" * 129,
        "attributes..a",
        "attributes.a.",
    ]
    assert info.value.status == 422
    assert info.value.detail.startswith("service[$ne]: unknown parameter")


def test_duplicates_rejected():
    with pytest.raises(ValidationFailed) as info:
        parse(("service", "a"), ("service", "b"), ("limit", "1"), ("limit", "2"))
    assert fields_of(info.value) == ["service", "limit"]
    assert all("more than once" in e["message"] for e in info.value.errors)


def test_duplicate_attribute_rejected():
    with pytest.raises(ValidationFailed):
        parse(("attributes.stage", "a"), ("attributes.stage", "b"))


@pytest.mark.parametrize(
    "name", [*EXACT_FIELDS, "q", "user_agent", "from", "to", "timestamp", "attributes.k"]
)
def test_empty_values_rejected(name):
    with pytest.raises(ValidationFailed) as info:
        parse((name, ""))
    assert fields_of(info.value) == [name]


def test_from_to():
    f = flt(("from", "2026-01-31T10:00:00Z"), ("to", "2026-01-31T12:00:00+01:00"))
    assert f.start == utc(2026, 1, 31, 10)
    assert f.end == utc(2026, 1, 31, 11)


def test_plus_arriving_as_space():
    f = flt(("from", "2026-01-31T12:00:00 02:00"))
    assert f.start == utc(2026, 1, 31, 10)


def test_naive_time_is_utc():
    assert flt(("to", "2026-01-31T12:00:00")).end == utc(2026, 1, 31, 12)


@pytest.mark.parametrize("name", ["from", "to"])
def test_bad_time(name):
    with pytest.raises(ValidationFailed) as info:
        parse((name, "yesterday"))
    assert fields_of(info.value) == [name]


def test_timestamp_day():
    f = flt(("timestamp", "2026-01-31"))
    assert (f.start, f.end) == (utc(2026, 1, 31), utc(2026, 2, 1))


def test_timestamp_day_intersected_with_from_to():
    f = flt(
        ("timestamp", "2026-01-31"),
        ("from", "2026-01-31T06:00:00Z"),
        ("to", "2026-02-03T00:00:00Z"),
    )
    assert (f.start, f.end) == (utc(2026, 1, 31, 6), utc(2026, 2, 1))
    f = flt(
        ("timestamp", "2026-01-31"),
        ("from", "2026-01-01T00:00:00Z"),
        ("to", "2026-01-31T09:00:00Z"),
    )
    assert (f.start, f.end) == (utc(2026, 1, 31), utc(2026, 1, 31, 9))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("from", "0001-01-01T00:00:00+14:00"),  # 0000-12-31T10:00Z: before year 1
        ("from", "0001-01-01T00:00:00 14:00"),  # the same with '+' arriving as a space
        ("to", "9999-12-31T23:59:59-14:00"),  # 10000-01-01T13:59:59Z: after year 9999
    ],
)
def test_time_outside_the_representable_range_is_422_naming_it(name, value):
    with pytest.raises(ValidationFailed) as info:
        parse((name, value))
    assert fields_of(info.value) == [name]
    assert "0001-01-01T00:00:00Z" in info.value.detail and "9999-12-31" in info.value.detail


def test_the_edges_of_the_representable_range_are_fine():
    f = flt(("from", "0001-01-01T00:00:00Z"), ("to", "9999-12-31T23:59:59.999Z"))
    assert f.start == utc(1, 1, 1)
    assert f.end == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_the_last_day_has_no_upper_bound():
    """Its end (10000-01-01) is not a datetime; nothing can be later than year 9999 anyway."""
    f = flt(("timestamp", "9999-12-31"))
    assert (f.start, f.end) == (utc(9999, 12, 31), None)
    assert f.matches({"level": "INFO", "timestamp": "9999-12-31T23:59:59.999Z"})
    assert flt(("timestamp", "0001-01-01")).end == utc(1, 1, 2)


def test_parse_time_is_the_one_rule_for_every_time_parameter():
    assert parse_time("before", "2026-01-31T12:00:00 02:00") == utc(2026, 1, 31, 10)
    with pytest.raises(ValidationFailed) as info:
        parse_time("before", "0001-01-01T00:00:00+14:00")
    assert fields_of(info.value) == ["before"]


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ((("from", "2026-01-31T12:00:00Z"), ("to", "2026-01-31T11:00:00Z")), "from"),
        ((("from", "2026-01-31T12:00:00Z"), ("to", "2026-01-31T12:00:00Z")), "from"),
        ((("from", "2026-01-31T13:00:00+01:00"), ("to", "2026-01-31T12:00:00Z")), "from"),
        ((("timestamp", "2026-01-31"), ("from", "2026-02-01T00:00:00Z")), "timestamp"),
        ((("timestamp", "2026-01-31"), ("to", "2026-01-31T00:00:00Z")), "timestamp"),
    ],
)
def test_an_empty_time_range_is_422(pairs, field):
    """`to` is exclusive, so from == to matches nothing either: refused, not answered empty."""
    with pytest.raises(ValidationFailed) as info:
        parse(*pairs)
    assert fields_of(info.value) == [field]


@pytest.mark.parametrize("name", ["q", "user_agent"])
def test_substring_length_is_bounded(name):
    assert flt((name, "é" * MAX_SUBSTRING)).substrings  # characters, not bytes
    with pytest.raises(ValidationFailed) as info:
        parse((name, "x" * (MAX_SUBSTRING + 1)))
    assert fields_of(info.value) == [name]
    assert f"at most {MAX_SUBSTRING} characters" in info.value.detail


@pytest.mark.parametrize("value", ["2026-01-31T00:00:00Z", "31/01/2026", "2026-02-30"])
def test_bad_timestamp_day(value):
    with pytest.raises(ValidationFailed) as info:
        parse(("timestamp", value))
    assert fields_of(info.value) == ["timestamp"]


# --- to_mongo ---------------------------------------------------------------------------


def _keys(value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(k)
            out.extend(_keys(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_keys(v))
    return out


def test_to_mongo_full():
    f = flt(
        ("level", "error,warn"),
        ("min_level", "info"),
        ("service", "api"),
        ("q", "time.out*"),
        ("user_agent", "Mozilla"),
        ("from", "2026-01-31T10:00:00Z"),
        ("to", "2026-01-31T11:00:00Z"),
        ("attributes.version", "3"),
    )
    q = f.to_mongo("acme")
    assert next(iter(q)) == "tenant_id"
    assert q == {
        "tenant_id": "acme",
        "level": {"$in": ["ERROR", "WARNING"]},
        "level_no": {"$gte": 20},
        "service": "api",
        "message": {"$regex": r"time\.out\*", "$options": "i"},
        "user_agent": {"$regex": "Mozilla", "$options": "i"},
        "timestamp": {"$gte": utc(2026, 1, 31, 10), "$lt": utc(2026, 1, 31, 11)},
        "attributes.version": {"$in": ["3", 3]},
    }


def test_to_mongo_single_level_and_half_open_range():
    q = flt(("level", "error"), ("from", "2026-01-31T10:00:00Z")).to_mongo("t")
    assert q == {"tenant_id": "t", "level": "ERROR", "timestamp": {"$gte": utc(2026, 1, 31, 10)}}
    q = flt(("to", "2026-01-31T10:00:00Z")).to_mongo("t")
    assert q["timestamp"] == {"$lt": utc(2026, 1, 31, 10)}


def test_to_mongo_empty_filter_is_the_tenant():
    assert LogFilter().to_mongo("acme") == {"tenant_id": "acme"}


@pytest.mark.parametrize(
    "hostile",
    ["$ne", "{'$gt': ''}", "$where", "a.b", "$regex", ".*", "x\x00y"],
)
def test_user_text_never_becomes_an_operator(hostile):
    f = flt(
        *((name, hostile) for name in EXACT_FIELDS),
        ("q", hostile),
        ("user_agent", hostile),
        ("attributes.k", hostile),
    )
    q = f.to_mongo("acme")
    assert next(iter(q)) == "tenant_id" and q["tenant_id"] == "acme"
    allowed = {*EXACT_FIELDS, "tenant_id", "message", "user_agent", "attributes.k"}
    for key in _keys(q):
        assert key in allowed or key in MONGO_OPERATORS
    for name in EXACT_FIELDS:
        assert q[name] == hostile  # a plain string, compared by equality


def test_tenant_first_even_with_every_filter():
    f = LogFilter(
        levels=("INFO",),
        min_level="DEBUG",
        exact=(("service", "s"),),
        substrings=(("message", "m"),),
        start=utc(2026, 1, 1),
        end=utc(2026, 1, 2),
        attributes=(("k", "v"),),
    )
    assert next(iter(f.to_mongo("t"))) == "tenant_id"


# --- escape_regex -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [".*(", "a+b?", "[x]{2}", "^start$", "back\\slash", "a|b", "(?i)x", "price: $5.00"]
)
def test_escape_regex_matches_only_the_literal(text):
    pattern = re.compile(escape_regex(text), re.IGNORECASE)
    assert pattern.search(f"prefix {text} suffix")
    assert pattern.fullmatch(text)
    # strings a raw pattern would have matched, but the literal must not
    for other in ("", "anything", text.replace("(", "").replace(".", "x") + "zz", "aab", "xx"):
        if text not in other:
            assert not pattern.search(other)


def test_escape_regex_exact_output():
    assert escape_regex(".*(") == r"\.\*\("
    assert escape_regex("plain text-123") == "plain text-123"


# --- _attribute_candidates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", ["3", 3]),
        ("-7", ["-7", -7]),
        ("3.5", ["3.5", 3.5]),
        ("1e3", ["1e3", 1000.0]),
        ("true", ["true", True]),
        ("false", ["false", False]),
        ("True", ["True"]),
        ("prod", ["prod"]),
        ("", [""]),
    ],
)
def test_attribute_candidates(value, expected):
    got = _attribute_candidates(value)
    assert got == expected
    assert [type(x) for x in got] == [type(x) for x in expected]


# --- matches agrees with the MongoDB meaning ---------------------------------------------

SAMPLES: dict[str, dict[str, Any]] = {
    "e1": {
        "id": "e1",
        "timestamp": "2026-01-31T09:59:59.999Z",
        "level": "DEBUG",
        "message": "Cache warmed",
        "service": "api",
        "attributes": {"version": 3, "stage": "prod"},
    },
    "e2": {
        "id": "e2",
        "timestamp": "2026-01-31T10:00:00.000Z",
        "level": "INFO",
        "message": "User Login OK",
        "service": "api",
        "user_agent": "Mozilla/5.0 (X11)",
        "attributes": {"version": "3", "stage": "dev"},
    },
    "e3": {
        "id": "e3",
        "timestamp": "2026-01-31T10:30:00.000Z",
        "level": "WARNING",
        "message": "slow query: 1.5s (limit .*)",
        "service": "db",
        "attributes": {"version": 3.0, "flag": True},
    },
    "e4": {
        "id": "e4",
        "timestamp": "2026-01-31T11:00:00.000Z",
        "level": "ERROR",
        "message": "timeout",
        "service": "api",
        "user_id": "u1",
        "attributes": {"version": "4", "flag": "true"},
    },
    "e5": {
        "id": "e5",
        "timestamp": "2026-02-01T00:00:00.000Z",
        "level": "CRITICAL",
        "action": "db.drop",
        "service": "db",
    },
}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], {"e1", "e2", "e3", "e4", "e5"}),
        ([("level", "error,critical")], {"e4", "e5"}),
        ([("severity", "info")], {"e2"}),
        ([("min_level", "warn")], {"e3", "e4", "e5"}),
        ([("min_level", "warn"), ("level", "error,debug")], {"e4"}),
        ([("service", "api")], {"e1", "e2", "e4"}),
        ([("service", "API")], set()),  # exact is case-sensitive
        ([("user_id", "u1")], {"e4"}),
        ([("q", "login")], {"e2"}),  # substring, case-insensitive
        ([("q", ".*")], {"e3"}),  # literal, not a regex
        ([("q", "1.5s (")], {"e3"}),
        ([("q", "o")], {"e2", "e3", "e4"}),  # e5 has no message
        ([("user_agent", "x11")], {"e2"}),
        ([("from", "2026-01-31T10:00:00Z")], {"e2", "e3", "e4", "e5"}),  # inclusive
        ([("to", "2026-01-31T11:00:00Z")], {"e1", "e2", "e3"}),  # exclusive
        ([("timestamp", "2026-01-31")], {"e1", "e2", "e3", "e4"}),
        ([("timestamp", "2026-02-01")], {"e5"}),
        ([("from", "2026-01-31T11:00:00 01:00")], {"e2", "e3", "e4", "e5"}),
        ([("attributes.version", "3")], {"e1", "e2", "e3"}),  # "3", 3 and 3.0
        ([("attributes.version", "4")], {"e4"}),
        ([("attributes.stage", "prod")], {"e1"}),
        ([("attributes.missing", "x")], set()),
        ([("attributes.flag", "true")], {"e3", "e4"}),
        ([("service", "db"), ("min_level", "critical")], {"e5"}),
    ],
)
def test_matches_agrees_with_expected(params, expected):
    f = parse_params(params, frozenset())
    got = {k for k, e in SAMPLES.items() if f.filter.matches(e)}
    assert got == expected


def test_matches_bool_is_not_a_number():
    f = flt(("attributes.x", "1"))
    assert not f.matches({"level": "INFO", "attributes": {"x": True}})
    f = flt(("attributes.x", "true"))
    assert not f.matches({"level": "INFO", "attributes": {"x": 1}})


def test_matches_array_attribute_like_mongodb():
    f = flt(("attributes.tags", "red"))
    assert f.matches({"level": "INFO", "attributes": {"tags": ["red", "blue"]}})


# --- dotted attribute names (OpenTelemetry, ECS) ---------------------------------------


def test_dotted_attribute_matches_the_dotted_key_or_the_nested_path():
    f = flt(("attributes.http.request.method", "GET"), ("attributes.stage", "prod"))
    assert f.attributes == (("http.request.method", "GET"), ("stage", "prod"))
    candidates = {"$in": ["GET"]}
    assert f.to_mongo("acme") == {
        "tenant_id": "acme",
        "attributes.stage": {"$in": ["prod"]},
        "$or": [
            {"attributes.http\uff0erequest\uff0emethod": candidates},
            {"attributes.http.request.method": candidates},
        ],
    }


def test_two_dotted_attributes_are_both_required():
    q = flt(("attributes.a.b", "1"), ("attributes.c.d", "2")).to_mongo("t")
    assert [list(c) for c in q["$and"]] == [["$or"], ["$or"]]
    assert "$or" not in q


@pytest.mark.parametrize(
    ("attributes", "hit"),
    [
        ({"http.request.method": "GET"}, True),  # as OpenTelemetry writes it
        ({"http": {"request": {"method": "GET"}}}, True),  # as nested JSON (ECS)
        ({"http": [{"request": {"method": "POST"}}, {"request": {"method": "GET"}}]}, True),
        ({"http": {"request": {"method": ["PUT", "GET"]}}}, True),
        ({"http.request.method": "POST"}, False),
        ({"http": {"request.method": "GET"}}, False),  # neither form
        ({"http": "GET"}, False),
        ({}, False),
    ],
)
def test_dotted_attribute_live_tail_twin(attributes, hit):
    f = flt(("attributes.http.request.method", "GET"))
    assert f.matches({"level": "INFO", "attributes": attributes}) is hit
