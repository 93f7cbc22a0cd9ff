"""orjson-backed responses (FastAPI's own ORJSONResponse is deprecated)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette import responses


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(content: Any) -> bytes:
    """Serialize to JSON bytes; naive datetimes are treated as UTC (how MongoDB stores them)."""
    return orjson.dumps(content, default=_default, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


class JSONResponse(responses.JSONResponse):
    """Starlette's, rendered by orjson (a subclass so that FastAPI documents routes
    answering it with their ``response_model``)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class ProblemResponse(JSONResponse):
    media_type = "application/problem+json"
