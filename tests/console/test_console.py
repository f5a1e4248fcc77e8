"""The operator console in Chromium: sign-in, a held run reviewed and confirmed, a dry-run
plan, an employee synced now, and what it refuses."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from app.core.tenant import GuardConfig
from app.service.access import Scope
from app.service.tokens import issue_token
from simulators.lucca.company import Company
from tests.conftest import TEST_ADMIN_TOKEN
from tests.console.conftest import screenshot, sign_in
from tests.e2e.harness import Service
from tests.e2e.stories import hire, small_company, yesterday

pytestmark = pytest.mark.e2e

SCRIPT_NAME = "<script>alert(1)</script>"


def _company_of(size: int) -> Company:
    company = small_company()
    for user_id in range(5, size + 1):
        hire(company, user_id, f"Person{user_id}", "Example", manager=1)
    return company


async def test_a_wrong_token_a_form_without_csrf_and_another_tenant_are_refused(
    console: Service, page: Page
) -> None:
    await sign_in(page, console, token="not-the-admin-token-at-all")
    await expect(page.get_by_role("alert")).to_contain_text("not valid")
    await screenshot(page, "sign-in")
    assert "/sign-in" in page.url

    # With the keyboard alone: the token field has the focus, Enter signs in, Tab reaches
    # the skip link first.
    await page.keyboard.type(TEST_ADMIN_TOKEN)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    company = console.registry.add(small_company())
    tenant = await console.add_tenant(company)
    forged = await page.request.post(
        f"{console.url}/console/t/{tenant.name}/runs", form={"kind": "full"}
    )
    assert forged.status == 403
    assert await console.resources.runs.recent(tenant.name) == []

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Token")).to_be_visible()
    after = await page.request.get(f"{console.url}/console/t/{tenant.name}", max_redirects=0)
    assert after.status == 303  # the session is gone: back to the sign-in page

    # A tenant's operator token opens its own tenant, and no other: that one is not found.
    other = await console.add_tenant(console.registry.add(small_company()), name="globex")
    issued = await issue_token(
        console.resources,
        tenant.name,
        scope=Scope.OPERATOR,
        name="hr-admin",
        lifetime=timedelta(days=1),
        by="admin",
    )
    await sign_in(page, console, token=issued.token)
    await expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    await expect(page.get_by_role("link", name=tenant.name)).to_be_visible()
    await expect(page.get_by_role("link", name=other.name)).to_have_count(0)  # not listed
    own = await page.request.get(f"{console.url}/console/t/{tenant.name}")
    assert own.status == 200
    elsewhere = await page.request.get(f"{console.url}/console/t/{other.name}")
    assert elsewhere.status == 404


async def test_a_held_run_is_seen_reviewed_and_confirmed(console: Service, page: Page) -> None:
    company = console.registry.add(_company_of(30))
    tenant = await console.add_tenant(company, name="acme", guard=GuardConfig(max_suspend_count=3))
    assert (await tenant.full_sync())["state"] == "done"
    leaving = [u["id"] for u in company.users() if u["id"] > 20]
    for user_id in leaving:
        company.set_contract(user_id, end=yesterday(company))
    held = await tenant.full_sync()
    assert held["state"] == "held"
    await console.add_tenant(console.registry.add(small_company()), name="globex")  # healthy

    await sign_in(page, console)
    row = page.get_by_role("row", name=re.compile(tenant.name))
    await expect(row).to_contain_text(f"Held run · {len(leaving)} to review")
    await screenshot(page, "overview")

    await row.get_by_role("link", name=re.compile("Held run")).click()
    await expect(page.get_by_role("heading", name=re.compile("Held run"))).to_be_visible()
    await expect(page.locator("tbody tr")).to_have_count(len(leaving))
    await screenshot(page, "held-run")

    await page.get_by_role("button", name=f"Suspend these {len(leaving)}").click()
    await expect(page.get_by_role("heading", name=re.compile("^Run"))).to_be_visible()
    # The page updates itself while the confirming run goes.
    await expect(page.locator(".facts .state")).to_have_text("done", timeout=60_000)
    await expect(page.locator(".filters")).to_contain_text(f"suspend {len(leaving)}")
    await screenshot(page, "run")
    suspended = [p for p in await tenant.profiles() if not p.active]
    assert sorted(int(p.external_id or 0) for p in suspended) == leaving

    await page.goto(f"{console.url}/console/t/{tenant.name}/held/{held['id']}")
    await expect(page.get_by_role("status")).to_contain_text("Confirmed by admin")
    await tenant.send(company.update(3, firstName="Chloe"))  # a webhook-driven sync
    await tenant.settle()
    await page.goto(f"{console.url}/console/t/{tenant.name}")
    await expect(page.locator("#tenant-body")).to_contain_text("confirmed")
    await expect(page.locator("#tenant-body")).to_contain_text("1 sync")

    await page.get_by_label("Why pause (optional)").fill("Lucca migration this weekend")
    await page.get_by_role("button", name="Pause").click()
    banner = page.get_by_role("status").filter(has_text="Paused by admin")
    await expect(banner).to_contain_text("Lucca migration this weekend")
    await screenshot(page, "tenant")
    await page.get_by_role("link", name="Disconnect…").click()
    await expect(
        page.get_by_role("button", name=re.compile("give back 30 profiles"))
    ).to_be_visible()
    await screenshot(page, "disconnect")
    await page.get_by_role("link", name="Cancel").click()
    await page.get_by_role("button", name="Resume").click()
    await expect(page.get_by_role("button", name="Pause")).to_be_visible()
    assert await console.resources.releases.get(tenant.name) is None


async def test_a_dry_run_plan_and_an_employee_synced_now(console: Service, page: Page) -> None:
    company = small_company()
    hire(company, 5, SCRIPT_NAME, "Hacker", manager=1)
    tenant = await console.add_tenant(console.registry.add(company), name="initech")

    await sign_in(page, console)
    await page.goto(f"{console.url}/console/t/{tenant.name}/settings")
    await page.get_by_role("button", name="Test Lucca").click()
    await expect(page.locator("#test-result")).to_contain_text("Lucca answered")
    await page.get_by_role("button", name="Test Elevo").click()
    await expect(page.locator("#test-result")).to_contain_text("Elevo answered")
    await screenshot(page, "settings")

    await page.goto(f"{console.url}/console/t/{tenant.name}")
    await page.get_by_role("button", name="Dry run (plan only)").click()
    await expect(page.get_by_role("heading", name=re.compile("Dry run plan"))).to_be_visible()
    await expect(page.locator(".facts .state")).to_have_text("done", timeout=60_000)
    await expect(page.locator("tbody tr")).to_have_count(5)
    await expect(page.locator("tbody")).to_contain_text(SCRIPT_NAME)  # as text, not run
    await screenshot(page, "dry-run")
    assert await tenant.profiles() == []  # a plan writes nothing

    await page.get_by_label("Search").fill("Hacker")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("tbody tr")).to_have_count(1)

    await page.get_by_role("link", name="5", exact=True).click()
    await page.get_by_role("button", name="Sync now").click()
    trace = page.locator("#trace")
    await expect(trace).to_contain_text("written, Elevo accepted it", timeout=60_000)
    await expect(trace).to_contain_text(SCRIPT_NAME)
    await expect(trace).to_contain_text("active: employed today")
    await expect(page.locator(".timeline")).to_contain_text("create")
    await screenshot(page, "employee")
    profile = await tenant.profile(5)
    assert profile is not None
    assert profile.active
