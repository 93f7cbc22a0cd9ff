"""Log filters: parsed once from query parameters, applied by MongoDB (search, stats,
export, cleanup) or in memory (live tail) with the same meaning.

Anything not understood is a 422, never a silent match-all. Values come from
the query string, so they are always strings and can never become MongoDB
operators; text used in a ``$regex`` is escaped first.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.core.errors import ValidationFailed
from services.core.logs.model import LEVEL_NO, iso, parse_iso, parse_level, stored_key

EXACT_FIELDS = (
    "service",
    "action",
    "resource_type",
    "resource_id",
    "user_id",
    "ip_address",
    "trace_id",
    "span_id",
    "host",
)
SUBSTRING_FIELDS = {"user_agent": "user_agent", "q": "message"}
FILTER_PARAMS = frozenset(
    {"level", "severity", "min_level", "from", "to", "timestamp", *EXACT_FIELDS, *SUBSTRING_FIELDS}
)
REPEATABLE = frozenset({"level", "severity"})
# What each filter means, for the API reference (the routes' OpenAPI parameters and
# the live tail's description); one entry per name in FILTER_PARAMS.
FILTER_DOCS: dict[str, str] = {
    "level": "Only these levels (DEBUG, INFO, WARNING, ERROR, CRITICAL, or an alias such as "
    "warn or fatal; any case): repeat the parameter or separate levels with commas.",
    "severity": "The same as level.",
    "min_level": "Only this level and more severe ones.",
    "from": "Only events at or after this time (RFC 3339, e.g. 2026-01-31T12:00:00Z; inclusive).",
    "to": "Only events before this time (RFC 3339; exclusive).",
    "timestamp": "Only events of this UTC day (YYYY-MM-DD); combines with from/to.",
    **{name: f"Only events whose {name} is exactly this." for name in EXACT_FIELDS},
    "user_agent": "Only events whose user_agent contains this text (any case; at most "
    "{max} characters).",
    "q": "Only events whose message contains this text (any case; at most {max} characters).",
}
# Dotted names (``http.request.method``) as OpenTelemetry and ECS write them: no empty
# part, so the name is also a valid MongoDB path of nested objects.
ATTRIBUTE_KEY = re.compile(r"^(?=.{1,128}$)[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
# FerretDB v1 compiles a ``$regex`` anew for every document it scans, so a substring
# costs in proportion to its length times the events scanned: 5,000 characters took
# 37 s of FerretDB CPU on 20,000 events where 200 took 6 s. Nobody searches a log
# for a paragraph; a longer text is refused before it reaches the storage.
MAX_SUBSTRING = 256
FILTER_DOCS |= {n: FILTER_DOCS[n].format(max=MAX_SUBSTRING) for n in SUBSTRING_FIELDS}
# Any attribute, nested ones by their dotted path; documented beside the named filters.
ATTRIBUTE_DOC = (
    "attributes.<key>=<value>: only events whose attribute <key> (a dotted path reaches "
    "nested objects, e.g. attributes.http.method) equals <value>; a number or true/false "
    "also matches the typed value."
)
_REGEX_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def escape_regex(text: str) -> str:
    """Escape for a literal match in both Python `re` and RE2 (FerretDB)."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


@dataclass(frozen=True)
class LogFilter:
    levels: tuple[str, ...] = ()
    min_level: str | None = None
    exact: tuple[tuple[str, str], ...] = ()
    substrings: tuple[tuple[str, str], ...] = ()  # (stored field, text)
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    attributes: tuple[tuple[str, str], ...] = ()

    def to_mongo(self, tenant_id: str) -> dict[str, Any]:
        """The MongoDB query; always starts from the tenant (isolation lives here)."""
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if self.levels:
            query["level"] = self.levels[0] if len(self.levels) == 1 else {"$in": list(self.levels)}
        if self.min_level:
            query["level_no"] = {"$gte": LEVEL_NO[self.min_level]}
        for name, value in self.exact:
            query[name] = value
        for name, text in self.substrings:
            query[name] = {"$regex": escape_regex(text), "$options": "i"}
        if self.start or self.end:
            rng: dict[str, datetime] = {}
            if self.start:
                rng["$gte"] = self.start
            if self.end:
                rng["$lt"] = self.end
            query["timestamp"] = rng
        either: list[dict[str, Any]] = []
        for key, value in self.attributes:
            candidates = {"$in": _attribute_candidates(value)}
            if "." not in key:
                query[f"attributes.{key}"] = candidates
            else:  # the key written with dots, or the same path through nested objects
                nested = {f"attributes.{key}": candidates}
                either.append({"$or": [{f"attributes.{stored_key(key)}": candidates}, nested]})
        if len(either) == 1:
            query.update(either[0])
        elif either:
            query["$and"] = either
        return query

    def matches(self, event: dict[str, Any]) -> bool:
        """The same filter on an event in its wire/API shape (live tail)."""
        level = event.get("level")
        if self.levels and level not in self.levels:
            return False
        if self.min_level and LEVEL_NO.get(level or "", 0) < LEVEL_NO[self.min_level]:
            return False
        for name, value in self.exact:
            if event.get(name) != value:
                return False
        for name, text in self.substrings:
            have = event.get(name)
            if not isinstance(have, str) or text.casefold() not in have.casefold():
                return False
        if self.start or self.end:
            ts = event.get("timestamp", "")
            if self.start and ts < iso(self.start):
                return False
            if self.end and ts >= iso(self.end):
                return False
        attrs = event.get("attributes") or {}
        for key, value in self.attributes:
            found = [attrs[key]] if key in attrs else []
            if "." in key:
                found.extend(_at_path(attrs, key.split(".")))
            if not any(_attribute_matches(have, value) for have in found):
                return False
        return True


def _at_path(value: Any, parts: list[str]) -> list[Any]:
    """What MongoDB's dotted path ``parts`` reaches in ``value``: through nested objects,
    and through arrays into the objects they hold."""
    if not parts:
        return [value]
    if isinstance(value, dict):
        return _at_path(value[parts[0]], parts[1:]) if parts[0] in value else []
    if isinstance(value, list):
        return [v for item in value if isinstance(item, dict) for v in _at_path(item, parts)]
    return []


def _same(have: Any, candidate: Any) -> bool:
    # MongoDB keeps bool and number apart; Python's True == 1 must not leak in.
    return have == candidate and isinstance(have, bool) == isinstance(candidate, bool)


def _attribute_matches(have: Any, value: str) -> bool:
    """MongoDB semantics of ``{"attributes.k": {"$in": candidates}}``: on an array,
    any element may match."""
    candidates = _attribute_candidates(value)
    items = have if isinstance(have, list) else [have]
    return any(_same(item, c) for item in items for c in candidates)


def _attribute_candidates(value: str) -> list[Any]:
    """Query strings are text, but `version=3` should also find a numeric 3."""
    out: list[Any] = [value]
    try:
        out.append(int(value))
    except ValueError:
        with contextlib.suppress(ValueError):
            out.append(float(value))
    if value in ("true", "false"):
        out.append(value == "true")
    return out


def parse_time(name: str, value: str) -> datetime:
    """An RFC 3339 query parameter as a UTC datetime, or a 422 naming ``name``."""
    try:
        return parse_iso(value.replace(" ", "+"))  # '+' in a query string arrives as space
    except ValueError:
        raise ValidationFailed(
            f"{name}: '{value}' is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z).",
            errors=[{"field": name, "message": "not an RFC 3339 time"}],
        ) from None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is a moment in year 0 in UTC
        message = "outside the supported range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        raise ValidationFailed(
            f"{name}: '{value}' is {message} (in UTC).",
            errors=[{"field": name, "message": message}],
        ) from None


def _day(name: str, value: str) -> tuple[datetime, datetime | None]:
    """A ``YYYY-MM-DD`` day as [start, end); the last representable day has no end."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"{name}: use a day as YYYY-MM-DD",
            errors=[{"field": name, "message": "use a day as YYYY-MM-DD"}],
        ) from None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        return start, start + timedelta(days=1)
    except OverflowError:  # 9999-12-31: nothing is later than its end, so no bound is exact
        return start, None


@dataclass
class ParsedParams:
    filter: LogFilter
    options: dict[str, str] = field(default_factory=dict)


def parse_params(params: list[tuple[str, str]], options: frozenset[str]) -> ParsedParams:
    """Split query parameters into a :class:`LogFilter` and the endpoint's own options.

    ``options`` names the non-filter parameters the endpoint accepts (limit,
    cursor, format...); everything else must be a known filter.
    """
    errors: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    levels: list[str] = []
    attributes: list[tuple[str, str]] = []
    opts: dict[str, str] = {}

    def bad(name: str, message: str) -> None:
        errors.append({"field": name, "message": message})

    for name, value in params:
        if name in REPEATABLE:
            for part in value.split(","):
                level = parse_level(part)
                if level is None:
                    bad(name, f"unknown level '{part}' (use DEBUG, INFO, WARNING, ERROR, CRITICAL)")
                elif level not in levels:
                    levels.append(level)
            continue
        if name.startswith("attributes."):
            key = name[len("attributes.") :]
            if not ATTRIBUTE_KEY.match(key):
                bad(
                    name,
                    "attribute names are letters, digits, '_' and '-', parts joined by single "
                    "dots (at most 128 characters)",
                )
            elif any(k == key for k, _ in attributes):
                bad(name, "given more than once")
            else:
                attributes.append((key, value))
            continue
        if name not in FILTER_PARAMS and name not in options:
            bad(name, "unknown parameter")
            continue
        if name in seen:
            bad(name, "given more than once")
            continue
        seen[name] = value
        if name in options:
            opts[name] = value

    exact = tuple((n, seen[n]) for n in EXACT_FIELDS if n in seen)
    subs = tuple((SUBSTRING_FIELDS[n], seen[n]) for n in SUBSTRING_FIELDS if n in seen)
    for name, value in (*exact, *((f"attributes.{k}", v) for k, v in attributes)):
        if value == "":
            bad(name, "must not be empty")
    for name in SUBSTRING_FIELDS:
        if name not in seen:
            continue
        if seen[name] == "":
            bad(name, "must not be empty")
        elif len(seen[name]) > MAX_SUBSTRING:
            bad(name, f"at most {MAX_SUBSTRING} characters (got {len(seen[name])})")
    min_level = None
    if "min_level" in seen:
        min_level = parse_level(seen["min_level"])
        if min_level is None:
            bad("min_level", f"unknown level '{seen['min_level']}'")
    start = end = None
    try:
        if "from" in seen:
            start = parse_time("from", seen["from"])
        if "to" in seen:
            end = parse_time("to", seen["to"])
        if start and end and start >= end:
            # `to` is exclusive: such a range matches nothing, which is never what was meant.
            bad("from", "must be earlier than to (from is inclusive, to exclusive)")
        elif "timestamp" in seen:
            day_start, day_end = _day("timestamp", seen["timestamp"])
            start = max(start, day_start) if start else day_start
            if day_end:
                end = min(end, day_end) if end else day_end
            if end and start >= end:
                bad("timestamp", "this day lies outside from/to: the range is empty")
    except ValidationFailed as exc:
        errors.extend(exc.errors or [])
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", errors=errors)
    flt = LogFilter(
        levels=tuple(levels),
        min_level=min_level,
        exact=exact,
        substrings=subs,
        start=start,
        end=end,
        attributes=tuple(attributes),
    )
    return ParsedParams(flt, opts)
