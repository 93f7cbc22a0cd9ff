"""The log routes' query dependencies: typed options, the same actionable 422s.

A tiny app with one route per dependency, answering with what it parsed; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.core.web.app import install_error_handlers
from services.log.params import CleanupQuery, ExportQuery, SearchQuery, StatsQuery


def _plain(params: Any) -> dict:
    out = dataclasses.asdict(params)
    out["filter"] = repr(out["filter"])
    return {k: str(v) if k == "before" and v else v for k, v in out.items()}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/search")
    async def search(params: SearchQuery) -> dict:
        return _plain(params)

    @app.get("/stats")
    async def stats(params: StatsQuery) -> dict:
        return _plain(params)

    @app.get("/export")
    async def export(params: ExportQuery) -> dict:
        return _plain(params)

    @app.delete("/cleanup")
    async def cleanup(params: CleanupQuery) -> dict:
        return _plain(params)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_search_defaults(client: httpx.AsyncClient) -> None:
    body = (await client.get("/search")).json()
    assert {k: body[k] for k in ("descending", "limit", "cursor", "page", "with_total")} == {
        "descending": True,
        "limit": 50,
        "cursor": None,
        "page": None,
        "with_total": False,
    }


async def test_search_options_parse(client: httpx.AsyncClient) -> None:
    body = (await client.get("/search?sort=ASC&limit=7&total=1&service=api")).json()
    assert (body["descending"], body["limit"], body["with_total"]) == (False, 7, True)
    assert "('service', 'api')" in body["filter"]
    paged = (await client.get("/search?size=10")).json()
    assert (paged["limit"], paged["page"]) == (10, 1)  # size alone is page 1
    count_only = (await client.get("/search?limit=0&total=true")).json()
    assert count_only["limit"] == 0


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("/search?limit=abc", "limit", "must be a whole number"),
        ("/search?limit=1001", "limit", "must be between 0 and 1000"),
        ("/search?size=-1", "size", "must be between 0 and 1000"),
        ("/search?page=0", "page", "must be between 1 and 1000000"),
        ("/search?sort=sideways", "sort", "must be asc or desc"),
        ("/search?total=yes", "total", "must be true or false"),
        ("/search?cursor=x&page=2", "cursor", "use either cursor or page/size, not both"),
        ("/search?limit=0", "limit", "0 only counts: give it with total=true, without cursor/page"),
        ("/search?bogus=1", "bogus", "unknown parameter"),
        ("/search?limit=1&limit=2", "limit", "given more than once"),
        (
            "/search?level=loud",
            "level",
            "unknown level 'loud' (use DEBUG, INFO, WARNING, ERROR, CRITICAL)",
        ),
        ("/stats?by=host", "by", "must be one of level, service, action"),
        ("/stats?interval=2h", "interval", "must be one of 1m, 5m, 15m, 1h, 6h, 1d"),
        ("/stats?limit=5", "limit", "unknown parameter"),
        ("/export?format=xml", "format", "must be one of ndjson, json, csv"),
        ("/export?limit=0", "limit", "must be between 1 and 100000000"),
        ("/cleanup?older_than_days=x", "older_than_days", "must be a whole number"),
        ("/cleanup?all=maybe", "all", "must be true or false"),
        ("/cleanup?before=soon", "before", "not an RFC 3339 time"),
    ],
)
async def test_bad_options_are_the_usual_422(
    client: httpx.AsyncClient, path: str, field: str, message: str
) -> None:
    method = "DELETE" if path.startswith("/cleanup") else "GET"
    resp = await client.request(method, path)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["type"] == "https://logserver.dev/problems/validation"
    assert body["title"] == "Unprocessable Content"
    assert body["errors"][0] == {"field": field, "message": message}
    assert body["detail"].startswith(f"{field}: ")


async def test_cleanup_options_parse(client: httpx.AsyncClient) -> None:
    resp = await client.delete("/cleanup?before=2026-01-31T12:00:00Z&older_than_days=3&all=TRUE")
    body = resp.json()
    assert body["before"] == "2026-01-31 12:00:00+00:00"
    assert (body["older_than_days"], body["match_all"]) == (3, True)


async def test_export_and_stats_defaults(client: httpx.AsyncClient) -> None:
    export = (await client.get("/export")).json()
    assert (export["format"], export["descending"], export["limit"]) == ("ndjson", True, None)
    stats = (await client.get("/stats?interval=1h")).json()
    assert (stats["by"], stats["interval"]) == ("level", "1h")
