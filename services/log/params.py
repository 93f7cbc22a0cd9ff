"""The query parameters of the log routes, parsed by FastAPI dependencies.

Each route takes one dependency (``SearchQuery``, ``StatsQuery``, ``ExportQuery``,
``CleanupQuery``) that yields a frozen dataclass: its filter and its options, checked.
The options are typed ``Query`` parameters and the filters are declared too, so every
route's OpenAPI lists them with their types, defaults and meanings. The checks keep
their actionable messages: a bad option fails pydantic validation with our own
message, rendered by the app's validation handler as the usual problem+json 422
(``{"field": "limit", "message": "must be between 0 and 1000"}``).

The filter itself is still parsed from the raw query string by
:func:`~services.core.logs.filters.parse_params` (shared with the live tail): it sees
repeated parameters, ``attributes.<key>`` and names nobody declared, which are a
422, never silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from services.core.errors import ValidationFailed
from services.core.logs.filters import (
    FILTER_DOCS,
    REPEATABLE,
    LogFilter,
    parse_params,
    parse_time,
)
from services.log.export import FORMATS
from services.log.repository import INTERVALS, STATS_BY

MAX_SEARCH_LIMIT = 1000
DEFAULT_SEARCH_LIMIT = 50
MAX_PAGE = 1_000_000
MAX_EXPORT_LIMIT = 100_000_000
MAX_CLEANUP_DAYS = 36500


def invalid(field: str, message: str) -> ValidationFailed:
    """A 422 naming the parameter, shaped as the validation handler shapes pydantic's."""
    return ValidationFailed(f"{field}: {message}", errors=[{"field": field, "message": message}])


# --- option types: pydantic validation with our messages -----------------------------


def _whole_number(lo: int, hi: int) -> BeforeValidator:
    def check(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise PydanticCustomError("whole_number", "must be a whole number") from None
        if not lo <= number <= hi:
            raise PydanticCustomError("range", f"must be between {lo} and {hi}")
        return number

    return BeforeValidator(check)


def _true_or_false(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in ("true", "false", "1", "0"):
        raise PydanticCustomError("boolean", "must be true or false")
    return text in ("true", "1")


def _one_of(choices: Iterable[str], message: str, *, any_case: bool = False) -> BeforeValidator:
    allowed = tuple(choices)

    def check(value: Any) -> str:
        text = str(value).lower() if any_case else str(value)
        if text not in allowed:
            raise PydanticCustomError("choice", message)
        return text

    return BeforeValidator(check)


def _number(lo: int, hi: int, description: str, *, optional: bool = False) -> Any:
    kind: Any = int | None if optional else int
    # The bounds are checked by _whole_number (with our message), shown in the schema.
    bounds = {"minimum": lo, "maximum": hi}
    query = Query(description=description, json_schema_extra=bounds)
    return Annotated[kind, _whole_number(lo, hi), query]


def _choice(
    choices: Iterable[str], description: str, *, any_case: bool = False, optional: bool = False
) -> Any:
    allowed = list(choices)
    message = (
        f"must be {' or '.join(allowed)}"
        if len(allowed) == 2
        else f"must be one of {', '.join(allowed)}"
    )
    kind: Any = str | None if optional else str
    return Annotated[
        kind,
        _one_of(allowed, message, any_case=any_case),
        Query(description=description, json_schema_extra={"enum": allowed}),
    ]


Flag = Annotated[bool, BeforeValidator(_true_or_false)]
Sort = _choice(("asc", "desc"), "Newest first (desc) or oldest first (asc).", any_case=True)


# --- the filter ------------------------------------------------------------------------


def _filter_parameters() -> list[inspect.Parameter]:
    """The filters as keyword parameters of a dependency, for FastAPI to document; their
    values are read from the raw query string (``parse_params``), not from these."""
    formats = {"from": "date-time", "to": "date-time", "timestamp": "date"}
    out = []
    for name, doc in FILTER_DOCS.items():
        kind: Any = list[str] | None if name in REPEATABLE else str | None
        extra = {"format": formats[name]} if name in formats else None
        query = Query(alias=name, description=doc, json_schema_extra=extra)
        out.append(
            inspect.Parameter(
                f"filter_{name}",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind, query],
            )
        )
    return out


_FILTER_PARAMETERS = _filter_parameters()


def _filter_of(options: Iterable[str]) -> Callable[..., Awaitable[LogFilter]]:
    """A dependency: the route's filter, any parameter besides ``options`` being a filter."""
    names = frozenset(options)

    async def dependency(request: Request, **_documented: object) -> LogFilter:
        return parse_params(request.query_params.multi_items(), names).filter

    request = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
    )
    # What FastAPI reads (inspect.signature honours it): the filters, documented.
    dependency.__dict__["__signature__"] = inspect.Signature([request, *_FILTER_PARAMETERS])
    return dependency


# --- search ----------------------------------------------------------------------------


SearchFilter = Annotated[
    LogFilter, Depends(_filter_of({"sort", "limit", "cursor", "page", "size", "total"}))
]
SearchLimit = _number(
    0, MAX_SEARCH_LIMIT, "Events per page (cursor paging); 0 only counts (with total=true)."
)
Cursor = Annotated[
    str | None, Query(description="Continue after the page that returned this next_cursor.")
]
Page = _number(1, MAX_PAGE, "Page number (page/size paging; not with cursor).", optional=True)
PageSize = _number(
    0, MAX_SEARCH_LIMIT, "Events per page of page/size paging (instead of limit).", optional=True
)
Total = Annotated[Flag, Query(description="Also count every matching event (meta.total).")]


@dataclass(frozen=True, slots=True)
class SearchParams:
    filter: LogFilter
    descending: bool
    limit: int
    cursor: str | None
    page: int | None
    with_total: bool


async def search_params(
    flt: SearchFilter,
    sort: Sort = "desc",
    limit: SearchLimit = DEFAULT_SEARCH_LIMIT,
    cursor: Cursor = None,
    page: Page = None,
    size: PageSize = None,
    total: Total = False,
) -> SearchParams:
    if cursor is not None and (page is not None or size is not None):
        raise invalid("cursor", "use either cursor or page/size, not both")
    if size is not None:
        limit = size
        page = page or 1
    if limit == 0 and (size is not None or not total or cursor is not None):
        # A count alone: no page is read (on FerretDB reading one is a scan of its own).
        raise invalid("limit", "0 only counts: give it with total=true, without cursor/page")
    return SearchParams(flt, sort == "desc", limit, cursor, page, total)


SearchQuery = Annotated[SearchParams, Depends(search_params)]


# --- stats -----------------------------------------------------------------------------


StatsFilter = Annotated[LogFilter, Depends(_filter_of({"by", "interval"}))]
StatsBy = _choice(STATS_BY, "Count events by this field.")
Interval = _choice(INTERVALS, "Also a histogram with buckets this wide.", optional=True)


@dataclass(frozen=True, slots=True)
class StatsParams:
    filter: LogFilter
    by: str
    interval: str | None


async def stats_params(
    flt: StatsFilter, by: StatsBy = "level", interval: Interval = None
) -> StatsParams:
    return StatsParams(flt, by, interval)


StatsQuery = Annotated[StatsParams, Depends(stats_params)]


# --- export ----------------------------------------------------------------------------


ExportFilter = Annotated[LogFilter, Depends(_filter_of({"format", "sort", "limit"}))]
Format = _choice(FORMATS, "The file format.")
ExportLimit = _number(
    1,
    MAX_EXPORT_LIMIT,
    "At most this many events (the tenant's export cap applies).",
    optional=True,
)


@dataclass(frozen=True, slots=True)
class ExportParams:
    filter: LogFilter
    format: str
    descending: bool
    limit: int | None


async def export_params(
    flt: ExportFilter, format: Format = "ndjson", sort: Sort = "desc", limit: ExportLimit = None
) -> ExportParams:
    return ExportParams(flt, format, sort == "desc", limit)


ExportQuery = Annotated[ExportParams, Depends(export_params)]


# --- cleanup ---------------------------------------------------------------------------


CleanupFilter = Annotated[LogFilter, Depends(_filter_of({"before", "older_than_days", "all"}))]
Before = Annotated[
    str | None,
    Query(
        description="Delete only events before this time (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    ),
]
OlderThanDays = _number(
    0, MAX_CLEANUP_DAYS, "Delete only events older than this many days.", optional=True
)
MatchAll = Annotated[
    Flag,
    Query(
        alias="all",
        description="Allow a delete without any filter or bound (every event of the tenant).",
    ),
]


@dataclass(frozen=True, slots=True)
class CleanupParams:
    filter: LogFilter
    before: datetime | None
    older_than_days: int | None
    match_all: bool


async def cleanup_params(
    flt: CleanupFilter,
    before: Before = None,
    older_than_days: OlderThanDays = None,
    match_all: MatchAll = False,
) -> CleanupParams:
    at = None if before is None else parse_time("before", before)
    return CleanupParams(flt, at, older_than_days, match_all)


CleanupQuery = Annotated[CleanupParams, Depends(cleanup_params)]
