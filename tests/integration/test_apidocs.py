"""The API reference through the real gateway: the page, its files (all from the
gateway itself: no CDN), and the merged OpenAPI document."""

from __future__ import annotations

import re

import httpx
import pytest

from services.cli.apidocs import merged_spec

pytestmark = pytest.mark.integration

REFERENCE = re.compile(r'(?:src|href)="([^"]+)"')


async def test_the_docs_page_loads_its_files_from_the_gateway(gateway: httpx.AsyncClient) -> None:
    moved = await gateway.get("/api/docs")
    assert moved.status_code == 301
    # Relative: behind an Ingress the console server's own port (8080) must not leak.
    assert moved.headers["location"] == "/api/docs/"
    page = await gateway.get("/api/docs/")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    refs = REFERENCE.findall(page.text)
    assert len(refs) >= 4, refs
    for ref in refs:
        assert ref.startswith("/api/docs/"), f"{ref} is not served by the gateway"
        asset = await gateway.get(ref)
        assert asset.status_code == 200, ref
        assert asset.content, ref
    init = (await gateway.get("/api/docs/init.js")).text
    assert '"/api/openapi.json"' in init
    assert "http" not in init  # nothing from elsewhere


async def test_the_merged_document_is_served(gateway: httpx.AsyncClient) -> None:
    resp = await gateway.get("/api/openapi.json")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == merged_spec()
