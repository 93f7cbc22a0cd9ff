"""The live tail's parameters, described for the API reference (FastAPI leaves
WebSocket routes out of OpenAPI)."""

from __future__ import annotations

from services.broadcast.routes import STREAM_PARAMETERS
from services.core.logs.filters import FILTER_PARAMS


def test_the_stream_parameters_are_described() -> None:
    names = {p["name"] for p in STREAM_PARAMETERS}
    assert names == {"tail", "token", "tenant"} | FILTER_PARAMS
    for parameter in STREAM_PARAMETERS:
        assert parameter["in"] == "query" and parameter["description"] and parameter["schema"]
