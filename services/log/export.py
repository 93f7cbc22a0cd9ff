"""Streaming export: events leave as they are read, in chunks; memory stays flat."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson

from services.core.logmodel import API_FIELDS, OBJECT_FIELDS

FORMATS = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
CSV_COLUMNS = list(API_FIELDS)
_JSON_COLUMNS = frozenset({*OBJECT_FIELDS, "attributes"})
CHUNK_BYTES = 64 * 1024


def csv_row(event: dict[str, Any]) -> list[str]:
    """Objects as JSON text in their cell; absent fields as empty cells."""
    row = []
    for col in CSV_COLUMNS:
        value = event.get(col)
        if value is None:
            row.append("")
        elif col in _JSON_COLUMNS:
            row.append(orjson.dumps(value).decode())
        else:
            row.append(str(value))
    return row


async def render(events: AsyncIterator[dict[str, Any]], fmt: str) -> AsyncIterator[bytes]:
    buffer = bytearray()
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        async for event in events:
            writer.writerow(csv_row(event))
            if text.tell() >= CHUNK_BYTES:
                yield text.getvalue().encode()
                text.seek(0)
                text.truncate()
        yield text.getvalue().encode()
        return
    first = True
    if fmt == "json":
        buffer += b"["
    async for event in events:
        if fmt == "json":
            if not first:
                buffer += b","
            buffer += orjson.dumps(event)
        else:
            buffer += orjson.dumps(event) + b"\n"
        first = False
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if fmt == "json":
        buffer += b"]"
    yield bytes(buffer)
