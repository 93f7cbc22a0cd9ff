"""Browser tests of the web console: Debian's chromium driven by Playwright.

One browser per session (``/usr/bin/chromium``, never a downloaded build),
one fresh context (cold cache, empty sessionStorage) per test, against the
session's real stack. Every test fails on an uncaught page error or a CSP
violation. Screenshots and measured numbers go to ``.data/console-tests/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from services.cli.stack import REPO, StackConfig
from tests.integration.conftest import Api, bearer
from tests.integration.helpers import ingest

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("LOGSERVER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / ".data" / "console-tests"
ROLES = ("admin", "auditor", "viewer", "writer")
LEVELS = ("INFO", "WARNING", "ERROR", "DEBUG")
SERVICES = ("api", "web", "jobs")

# The machine is shared and slow at times: generous deadlines, never sleeps.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


@dataclass
class PageLog:
    """What the page reported: uncaught errors, CSP violations, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def console(self, kind: str, text: str) -> None:
        # A refused API call is logged by Chromium as "Failed to load resource": the
        # page shows it as a notice, which the tests check where they cause one.
        if kind == "error" and not text.startswith("Failed to load resource"):
            self.errors.append(f"console error: {text}")


async def open_page(
    browser: Browser, cfg: StackConfig, log: PageLog, **context_options: object
) -> Page:
    options: dict[str, object] = {"viewport": {"width": 1280, "height": 800}}
    options.update(context_options)
    context = await browser.new_context(base_url=cfg.gateway_url, **options)
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    page.on("pageerror", lambda exc: log.errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: log.console(msg.type, msg.text))

    async def on_dialog(dialog) -> None:
        log.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
async def page(browser: Browser, cfg: StackConfig, page_log: PageLog) -> AsyncIterator[Page]:
    """A fresh 1280x800 page; the test fails if the page threw or the CSP refused anything."""
    page = await open_page(browser, cfg, page_log)
    yield page
    await page.context.close()
    assert not page_log.errors, page_log.errors
    assert not page_log.dialogs, page_log.dialogs


@pytest.fixture(scope="session")
async def http(cfg: StackConfig) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cfg.gateway_url, timeout=60) as client:
        yield client


@dataclass
class ConsoleTenant:
    key: str
    creds: dict[str, tuple[str, str]]  # role -> (client id, secret)
    writer: dict[str, str]  # headers with a writer token
    reader: dict[str, str]  # headers with a viewer token


NewTenant = Callable[..., Awaitable[ConsoleTenant]]


@pytest.fixture(scope="session")
async def new_tenant(http: httpx.AsyncClient, admin_token: str) -> NewTenant:
    """A tenant with one key per role; ``events`` are ingested and stored first."""
    api = Api(http, admin_token)

    async def make(events: Iterable[dict] = (), prefix: str = "ui") -> ConsoleTenant:
        key = await api.tenant(prefix)
        creds = {role: await api.key(key, role) for role in ROLES}
        writer = bearer(await api.token(*creds["writer"]))
        reader = bearer(await api.token(*creds["viewer"]))
        events = list(events)
        if events:
            await ingest(http, writer, events, reader)
        return ConsoleTenant(key, creds, writer, reader)

    return make


async def delete_events(http: httpx.AsyncClient, tenant: ConsoleTenant) -> None:
    """Remove a tenant's events (tests that ingest thousands do, when done): FerretDB v1
    scans the whole collection for every query, so every later test would pay for them."""
    token = await Api(http, admin_token="").token(*tenant.creds["admin"])
    resp = await http.delete("/api/v1/logs/cleanup", params={"all": "true"}, headers=bearer(token))
    assert resp.status_code == 200, resp.text


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


MESSAGES = (
    "GET /api/orders 200 in 14 ms",
    "payment authorized for order A-1042",
    "slow query on orders: 812 ms",
    "cache miss for user profile u-17",
    "POST /api/cart 201 in 31 ms",
    "retrying upstream call to billing (attempt 2)",
    "nightly export finished: 18,204 rows",
)


def message(i: int) -> str:
    """The message of recent event ``i`` (seven templates, so levels and services vary)."""
    return f"{MESSAGES[i % len(MESSAGES)]} [req {i:04d}]"


def recent_events(count: int, *, prefix: str = "r", spacing_s: float = 10) -> list[dict]:
    """``count`` events over the last minutes: levels, services and a stage attribute vary."""
    now = datetime.now(UTC)
    return [
        {
            "id": f"{prefix}{i:04d}",
            "timestamp": iso(now - timedelta(seconds=spacing_s * i + 5)),
            "level": LEVELS[i % len(LEVELS)],
            "service": SERVICES[i % len(SERVICES)],
            "message": message(i),
            "stage": "prod" if i % 2 else "dev",
        }
        for i in range(count)
    ]


def old_events(count: int, hours_ago: float = 3) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "id": f"old{i}",
            "timestamp": iso(now - timedelta(hours=hours_ago, minutes=i)),
            "level": "error",
            "service": "batch",
            "message": "nightly run failed",
        }
        for i in range(count)
    ]


@pytest.fixture(scope="session")
async def seeded(new_tenant: NewTenant) -> ConsoleTenant:
    """120 events in the last 20 minutes and 5 from three hours ago."""
    return await new_tenant(recent_events(120) + old_events(5), prefix="seeded")


async def sign_in(page: Page, creds: tuple[str, str], path: str = "/") -> None:
    await page.goto(path)
    await page.fill("#client-id", creds[0])
    await page.fill("#client-secret", creds[1])
    await page.click("#signin-button")
    await expect(page.locator("#topbar")).to_be_visible()


def rows(page: Page):
    return page.locator("#results tbody tr.row")


async def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of the current screen as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    await page.screenshot(path=str(path))
    return path


def record_number(name: str, value: object) -> None:
    """Measured numbers (never asserted on time): appended to .data/console-tests/numbers.json."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "numbers.json"
    numbers = json.loads(path.read_text()) if path.exists() else {}
    numbers[name] = value
    path.write_text(json.dumps(numbers, indent=2))
    print(f"console number: {name} = {value}")
