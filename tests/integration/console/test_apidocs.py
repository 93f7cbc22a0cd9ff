"""The API reference in a real browser: Swagger UI renders the merged document
under the gateway's headers (no CSP refusal, no page error) and loads nothing
from anywhere but the gateway."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, Request, expect

from services.cli.stack import StackConfig

from .conftest import screenshot

pytestmark = pytest.mark.integration


async def test_swagger_ui_renders_every_operation_from_the_gateway_alone(
    page: Page, cfg: StackConfig
) -> None:
    requested: list[str] = []

    def on_request(request: Request) -> None:
        requested.append(request.url)

    page.on("request", on_request)
    await page.goto("/api/docs/")
    operations = page.locator(".opblock")
    await expect(operations.first).to_be_visible()
    assert await operations.count() >= 25
    # Open the live tail: its description (markdown, a table of close codes) renders.
    stream = page.locator(".opblock", has_text="/api/v1/logs/stream").first
    await stream.locator(".opblock-summary").click()
    await expect(stream.locator("table").first).to_contain_text("4429")
    # The schemas, the error shape among them.
    await expect(page.locator("section.models")).to_contain_text("Problem")
    await screenshot(page, "apidocs")
    assert requested, "the page requested nothing"
    outside = [url for url in requested if not url.startswith(cfg.gateway_url)]
    assert not outside, outside
