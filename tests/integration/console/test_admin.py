"""Roles in the console: what each one is shown, and the admin screens (tenants,
API keys with the secret shown once)."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from services.cli.stack import StackConfig

from .conftest import ConsoleTenant, NewTenant, screenshot, sign_in

pytestmark = pytest.mark.integration


async def test_a_viewer_sees_no_admin_and_no_export(page: Page, seeded: ConsoleTenant) -> None:
    await sign_in(page, seeded.creds["viewer"])
    await expect(page.locator("#search-view")).to_be_visible()
    await expect(page.locator("#nav-admin")).to_be_hidden()
    await expect(page.locator("#export-controls")).to_be_hidden()
    await expect(page.locator("#tenant-picker")).to_be_hidden()
    # Asking for the admin screen by URL shows the search instead.
    await page.goto("/?view=admin")
    await expect(page.locator("#search-view")).to_be_visible()
    await expect(page.locator("#admin-view")).to_be_hidden()


async def test_an_auditor_may_export_but_not_administer(page: Page, seeded: ConsoleTenant) -> None:
    await sign_in(page, seeded.creds["auditor"])
    await expect(page.locator("#export-controls")).to_be_visible()
    await expect(page.locator("#nav-admin")).to_be_hidden()


async def test_a_writer_is_told_it_can_only_send(page: Page, seeded: ConsoleTenant) -> None:
    await sign_in(page, seeded.creds["writer"])
    await expect(page.locator("#noread-view")).to_be_visible()
    await expect(page.locator("#noread-role")).to_have_text("writer")
    await expect(page.locator("#search-view")).to_be_hidden()


async def test_an_admin_creates_a_key_and_sees_its_secret_once(
    page: Page, new_tenant: NewTenant, http: httpx.AsyncClient
) -> None:
    tenant = await new_tenant(prefix="adm")
    await sign_in(page, tenant.creds["admin"])
    await page.click("#nav-admin")
    await expect(page.locator("#keys-tenant")).to_have_text(tenant.key)
    # A tenant's own admin manages its keys but cannot create or disable tenants.
    await expect(page.locator("#tenant-create-panel")).to_be_hidden()
    await expect(
        page.locator("#tenants-table").get_by_role("button", name="Disable")
    ).to_have_count(0)

    await page.fill("#key-create input[name=name]", "ci pipeline")
    await page.select_option("#key-role", "writer")
    await page.click("#key-create button[type=submit]")
    dialog = page.locator("#secret-dialog")
    await expect(dialog).to_be_visible()
    client_id = await dialog.locator("input.client-id").input_value()
    secret = await dialog.locator("input.client-secret").input_value()
    assert client_id.startswith("lsk_") and len(secret) > 20
    await screenshot(page, "admin-key-secret")
    await (
        dialog.locator("label", has_text="client secret").get_by_role("button", name="Copy").click()
    )
    assert await page.evaluate("navigator.clipboard.readText()") == secret

    # The secret works...
    resp = await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert resp.status_code == 200, resp.text
    # ...and once the dialog is closed it is nowhere in the page, not even after a reload.
    await page.click("#secret-done")
    await expect(dialog).to_be_hidden()
    # The dialog's `close` event (which empties it) is dispatched after it is hidden.
    await expect(dialog.locator("#secret-body > *")).to_have_count(0)
    assert secret not in await page.content()
    await page.reload()
    row = page.locator(f"#keys-table tr[data-key='{client_id}']")
    await expect(row).to_contain_text("ci pipeline")
    await expect(row).to_contain_text("writer")
    assert secret not in await page.content()

    # Revoking asks first, then the key stops working.
    await row.get_by_role("button", name="Revoke").click()
    await page.click("#confirm-ok")
    await expect(row).to_contain_text("revoked")
    resp = await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert resp.status_code == 401


async def test_the_platform_admin_picks_a_tenant_and_manages_tenants(
    page: Page, cfg: StackConfig, seeded: ConsoleTenant
) -> None:
    await sign_in(page, (cfg.admin_client_id, cfg.admin_client_secret))
    await expect(page.locator("#notenant-view")).to_be_visible()
    await page.select_option("#tenant-select", seeded.key)
    await expect(page.locator("#results tbody tr.row")).to_have_count(100)
    assert f"tenant={seeded.key}" in page.url
    # The stream names the tenant with ?tenant= (a browser cannot send X-Tenant-ID).
    await page.click("#live-toggle")
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    await expect(page.locator("#results tbody tr.row")).to_have_count(100)  # tail=100
    await page.click("#live-toggle")

    await page.click("#nav-admin")
    form = page.locator("#tenant-create")
    key = "made-in-the-console"
    await form.locator("input[name=key]").fill(key)
    await form.locator("input[name=name]").fill("Made in the console")
    await form.locator("input[name=retention_days]").fill("7")
    await form.locator("button[type=submit]").click()
    row = page.locator(f"#tenants-table tr[data-tenant='{key}']")
    await expect(row).to_contain_text("active")
    await expect(row.locator("input.retention")).to_have_value("7")

    await row.locator("input.retention").fill("90")
    await row.get_by_role("button", name="Save").click()
    await expect(page.locator("#notices")).to_contain_text(f"Retention of {key} is now 90 days")

    await row.get_by_role("button", name="Disable").click()
    await page.click("#confirm-ok")
    await expect(row).to_contain_text("disabled")
    await expect(row.get_by_role("button", name="Enable")).to_be_visible()
    await screenshot(page, "admin-tenants")

    # A refusal from the API is shown as its message: the key is taken.
    await form.locator("input[name=key]").fill(key)
    await form.locator("button[type=submit]").click()
    await expect(page.get_by_role("alert").first).to_contain_text("Conflict")
