"""Live tail in the browser: history first, new events on top, pause/resume, and
how the page keeps up with 1,000 events/s (measured and logged)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from playwright.async_api import Page, expect

from .conftest import (
    ConsoleTenant,
    NewTenant,
    delete_events,
    record_number,
    rows,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.integration


async def post(http: httpx.AsyncClient, headers: dict[str, str], events: list[dict]) -> None:
    resp = await http.post("/api/v1/logs/bulk", json=events, headers=headers)
    assert resp.status_code == 202, resp.text


async def test_live_tail_shows_new_events_and_pauses_without_losing_any(
    page: Page, new_tenant: NewTenant, http: httpx.AsyncClient
) -> None:
    history = [
        {"id": f"h{i}", "level": "info", "service": "api", "message": f"before {i}"}
        for i in range(3)
    ]
    tenant = await new_tenant(history, prefix="live")
    await sign_in(page, tenant.creds["viewer"], "/?service=api")
    await page.click("#live-toggle")
    await expect(page.locator("#live-toggle")).to_have_attribute("aria-pressed", "true")
    assert "live=1" in page.url
    # tail=N history first, newest on top.
    await expect(rows(page)).to_have_count(3)
    await expect(rows(page).first.locator("td.msg")).to_have_text("before 2")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    # An event ingested now streams in at the top; one the filter excludes does not.
    await post(
        http,
        tenant.writer,
        [
            {"id": "new-1", "level": "error", "service": "api", "message": "streamed in"},
            {"id": "other", "level": "error", "service": "web", "message": "filtered out"},
        ],
    )
    await expect(rows(page).first.locator("td.msg")).to_have_text("streamed in")
    await expect(rows(page)).to_have_count(4)
    await screenshot(page, "live-tail")

    # Paused: new events wait in a buffer, the table stays still.
    await page.click("#pause")
    await expect(page.locator("#pause")).to_have_text("Resume")
    await post(
        http,
        tenant.writer,
        [{"id": f"p{i}", "service": "api", "message": f"while paused {i}"} for i in range(3)],
    )
    await expect(page.locator("#live-status")).to_contain_text("3 new waiting")
    await expect(rows(page)).to_have_count(4)
    # Resumed: all of them, in order, newest on top.
    await page.click("#pause")
    await expect(rows(page)).to_have_count(7)
    texts = await rows(page).locator("td.msg").all_inner_texts()
    assert texts[:4] == ["while paused 2", "while paused 1", "while paused 0", "streamed in"]

    # Live off: back to a search of the time range.
    await page.click("#live-toggle")
    await expect(page.locator("#live-toggle")).to_have_attribute("aria-pressed", "false")
    await expect(page.locator("#histogram")).to_be_visible()


async def test_numbers_live_tail_at_1000_events_per_second(
    page: Page, new_tenant: NewTenant, http: httpx.AsyncClient
) -> None:
    """Five seconds at 1,000 events/s: how long until the page shows them, the longest
    main-thread task, and that the table keeps its cap. Logged, not asserted on time."""
    tenant = await new_tenant(prefix="rate")
    try:
        await measure_live_rate(page, http, tenant)
    finally:
        await delete_events(http, tenant)


async def measure_live_rate(page: Page, http: httpx.AsyncClient, tenant: ConsoleTenant) -> None:
    await sign_in(page, tenant.creds["viewer"], "/?live=1")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await page.evaluate(
        """() => {
          window.__longest = 0; window.__gap = 0;
          new PerformanceObserver((list) => {
            for (const e of list.getEntries()) {
              window.__longest = Math.max(window.__longest, e.duration);
            }
          }).observe({ type: 'longtask', buffered: false });
          let last = performance.now();
          const frame = (t) => {
            window.__gap = Math.max(window.__gap, t - last);
            last = t;
            requestAnimationFrame(frame);
          };
          requestAnimationFrame(frame);
        }"""
    )
    seconds, per_second = 5, 1000
    started = time.monotonic()
    for s in range(seconds):
        batch = [
            {"service": "load", "message": f"event {s}-{i}", "level": "info"}
            for i in range(per_second)
        ]
        await post(http, tenant.writer, batch)
        # Pace the sender at one batch per second (a rate, not a synchronization).
        await asyncio.sleep(max(0.0, started + s + 1 - time.monotonic()))
    sent = time.monotonic() - started
    status = page.locator("#live-status")
    await expect(status).to_contain_text(f"{seconds * per_second:,} received", timeout=60_000)
    shown_after = time.monotonic() - started
    kept = await rows(page).count()
    assert kept == 2000  # the cap: older rows are dropped, the page stays small
    longest = await page.evaluate("window.__longest")
    gap = await page.evaluate("window.__gap")
    record_number("live_events_sent", seconds * per_second)
    record_number("live_send_seconds", round(sent, 2))
    record_number("live_all_shown_after_seconds", round(shown_after, 2))
    record_number("live_longest_main_thread_task_ms", round(longest, 1))
    record_number("live_longest_frame_gap_ms", round(gap, 1))
    record_number("live_rows_kept", kept)
