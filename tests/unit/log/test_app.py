"""The log app's OpenAPI: every query route lists its parameters, typed and described.

Built from the app without starting it (no I/O). The live tail is a WebSocket, which
FastAPI leaves out of OpenAPI: tests/unit/broadcast/test_routes.py checks its parameters.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.core.logs.filters import FILTER_PARAMS
from services.log.app import create_app
from services.log.settings import LogSettings


@pytest.fixture(scope="module")
def paths() -> dict[str, Any]:
    return create_app(LogSettings()).openapi()["paths"]


def _parameters(paths: dict[str, Any], method: str, path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in paths[path][method]["parameters"] if p["in"] == "query"}


def _type(parameter: dict[str, Any]) -> str:
    schema = parameter["schema"]
    types = [s["type"] for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return types[0]


OPTIONS = {
    ("get", "/api/v1/logs"): {
        "sort": ("string", "desc"),
        "limit": ("integer", 50),
        "cursor": ("string", None),
        "page": ("integer", None),
        "size": ("integer", None),
        "total": ("boolean", False),
    },
    ("get", "/api/v1/logs/stats"): {"by": ("string", "level"), "interval": ("string", None)},
    ("get", "/api/v1/logs/export"): {
        "format": ("string", "ndjson"),
        "sort": ("string", "desc"),
        "limit": ("integer", None),
    },
    ("delete", "/api/v1/logs/cleanup"): {
        "before": ("string", None),
        "older_than_days": ("integer", None),
        "all": ("boolean", False),
    },
}


@pytest.mark.parametrize(
    ("route", "options"), list(OPTIONS.items()), ids=[" ".join(r) for r in OPTIONS]
)
def test_query_routes_list_their_options_and_filters(
    paths: dict[str, Any], route: tuple[str, str], options: dict[str, tuple[str, Any]]
) -> None:
    params = _parameters(paths, *route)
    assert set(params) == set(options) | FILTER_PARAMS
    for name, (kind, default) in options.items():
        assert _type(params[name]) == kind, name
        assert params[name]["schema"].get("default") == default, name
    for name, parameter in params.items():
        assert parameter["description"], name
        assert not parameter.get("required"), name
    assert _type(params["level"]) == "array"  # repeatable


def test_bounds_and_choices_are_in_the_schema(paths: dict[str, Any]) -> None:
    search = _parameters(paths, "get", "/api/v1/logs")
    assert (search["limit"]["schema"]["minimum"], search["limit"]["schema"]["maximum"]) == (0, 1000)
    assert search["sort"]["schema"]["enum"] == ["asc", "desc"]
    export = _parameters(paths, "get", "/api/v1/logs/export")
    assert export["format"]["schema"]["enum"] == ["ndjson", "json", "csv"]
    stats = _parameters(paths, "get", "/api/v1/logs/stats")
    assert stats["by"]["schema"]["enum"] == ["level", "service", "action"]
    assert search["from"]["schema"]["format"] == "date-time"
