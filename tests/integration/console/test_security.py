"""The console's files are served with strict headers, and log content (attacker-
controlled) is shown as inert text everywhere the console shows it."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from .conftest import NewTenant, PageLog, rows, screenshot, sign_in

pytestmark = pytest.mark.integration


async def test_headers_cache_and_compression(http: httpx.AsyncClient) -> None:
    index = await http.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["referrer-policy"] == "no-referrer"
    assert index.headers["x-frame-options"] == "DENY"
    assert index.headers["cache-control"] == "no-cache"
    etag = index.headers["etag"]
    again = await http.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 304

    assets = re.findall(r'(?:src|href)="(/assets/[0-9a-f]{12}/[^"]+)"', index.text)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"app.js", "app.css"}
    for asset in assets:
        resp = await http.get(asset, headers={"Accept-Encoding": "gzip"})
        assert resp.status_code == 200, asset
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in resp.headers
        if asset.endswith((".js", ".css")):
            assert resp.headers["content-encoding"] == "gzip", asset
    js = await http.get(next(a for a in assets if a.endswith("app.js")))
    assert js.headers["content-type"].startswith("text/javascript")

    missing = await http.get("/assets/000000000000/nope.js")
    assert missing.status_code == 404
    unknown = await http.get("/no/such/page")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


PAYLOADS = {
    "script": "<script>window.__pwned = 'script'</script>",
    "img": "<img src=x onerror=\"window.__pwned='img'\">",
    "svg": "<svg onload=\"window.__pwned='svg'\"></svg>",
    "link": "javascript:window.__pwned='link'",
    "break": '"><b id=injected>bold</b>',
}


async def test_xss_payloads_stay_inert_text(
    page: Page, page_log: PageLog, new_tenant: NewTenant
) -> None:
    events = [
        {
            "id": f"x-{name}",
            "level": "critical",
            "service": payload[:60],
            "message": payload,
            "host": payload,
            "attributes": {"note": payload, "url": PAYLOADS["link"]},
        }
        for name, payload in PAYLOADS.items()
    ]
    tenant = await new_tenant(events, prefix="xss")
    await sign_in(page, tenant.creds["viewer"])
    await expect(rows(page)).to_have_count(len(PAYLOADS))

    # Table: the text shows literally.
    messages = await rows(page).locator("td.msg").all_inner_texts()
    assert sorted(messages) == sorted(PAYLOADS.values())
    # Expanded JSON and fields of every event.
    for i in range(len(PAYLOADS)):
        await rows(page).nth(i).click()
    await expect(page.locator("#results tr.detail")).to_have_count(len(PAYLOADS))
    details = await page.locator("#results tr.detail pre.json").all_inner_texts()
    for payload in PAYLOADS.values():
        assert any(payload.replace('"', '\\"') in d for d in details), payload
    # Stats by service, the histogram's tooltip, the query bar's suggestions.
    await expect(page.locator("#stats-service")).to_contain_text("<script>")
    chart = page.locator("#histogram svg.hist")
    box = await chart.bounding_box()
    assert box
    await chart.hover(position={"x": box["width"] - 10, "y": 60})
    await expect(page.locator("#histogram .tooltip")).to_contain_text("CRITICAL")
    await page.fill("#query", "service:<")
    await expect(page.locator("#suggestions")).to_contain_text("<img src=x")
    await screenshot(page, "xss-inert")

    # Nothing ran, nothing was created from the payloads, no dialog, no CSP report.
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("#injected").count() == 0
    for selector in (
        "img",
        "iframe",
        "object",
        "embed",
        "main svg:not(.hist)",
        "a[href^='javascript']",
    ):
        assert await page.locator(selector).count() == 0, selector
    assert await page.locator("script").count() == 1  # the console's own module
    assert not page_log.dialogs and not page_log.errors
