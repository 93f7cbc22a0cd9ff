"""Streaming export: events leave as they are read, in chunks; memory stays flat.

CSV cells are made safe to open in a spreadsheet (OWASP "CSV Injection"), in a
way a program can undo exactly (see :func:`csv_cell`); NDJSON and JSON carry
every value unchanged.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from services.core.logs.model import API_FIELDS, OBJECT_FIELDS

FORMATS = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
CSV_COLUMNS = list(API_FIELDS)
_JSON_COLUMNS = frozenset({*OBJECT_FIELDS, "attributes"})
CHUNK_BYTES = 64 * 1024

# A spreadsheet reads a cell that starts with one of these as a formula (OWASP
# lists = + - @ TAB CR). A leading quote is added to those cells, and to cells
# that already start with a quote, so that "starts with ' " always means "one
# quote was added": a reader drops it and has the value back.
FORMULA_START = frozenset("=+-@\t\r'")
# Control characters other than TAB, LF and CR (which CSV quoting carries):
# C0, DEL and C1. Raw, they corrupt terminals (ESC sequences) and trip CSV
# readers (NUL); they are written as \uXXXX instead.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ESCAPE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\\\\]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\u{ord(char):04x}"


def csv_cell(value: str) -> str:
    r"""One cell, safe to open in a spreadsheet and exactly reversible.

    A value that starts with ``= + - @ TAB CR '`` or contains a control
    character (other than TAB, LF, CR) is written as ``'`` followed by the
    value with each ``\`` doubled and each control character as ``\uXXXX``
    (lower-case hex). Every other value is written unchanged. To read a cell
    back: if it starts with ``'``, drop that quote, then turn ``\\`` into
    ``\`` and ``\uXXXX`` into its character; otherwise take it as it is.
    """
    if not value or (value[0] not in FORMULA_START and not _CONTROL.search(value)):
        return value
    return "'" + _ESCAPE.sub(_escape, value)


def csv_row(event: dict[str, Any]) -> list[str]:
    """Objects as JSON text in their cell; absent fields as empty cells; see csv_cell."""
    row = []
    for col in CSV_COLUMNS:
        value = event.get(col)
        if value is None:
            row.append("")
        elif col in _JSON_COLUMNS:
            row.append(csv_cell(orjson.dumps(value).decode()))
        else:
            row.append(csv_cell(str(value)))
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
