"""The console in a real browser: Debian's Chromium driven by Playwright, against the web app
and a worker over loopback, the Lucca simulator and scim2-server (the e2e fixtures)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from arq.connections import ArqRedis

from app.main import create_app
from app.service.resources import Resources
from tests.asgi import asgi_client
from tests.conftest import TEST_ADMIN_TOKEN, make_settings
from tests.e2e.conftest import (  # noqa: F401 - fixtures shared with the e2e tests
    ServiceFactory,
    clock,
    lucca_registry,
    lucca_server,
    scim_server,
    service_factory,
)
from tests.e2e.harness import Service
from tests.factories import make_tenant_config

try:
    from playwright.async_api import Browser, Page, async_playwright
except ImportError:  # pragma: no cover - scripts/test installs it with the dev extras
    async_playwright = None  # type: ignore[assignment]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SESSION_KEY = "console-test-session-key-0123456789abcdef"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
SCRATCH = Path(tempfile.gettempdir()) / "console-screenshots"

pytestmark = pytest.mark.e2e


def _why_no_browser() -> str | None:
    if async_playwright is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return "no Chromium at /usr/bin/chromium (scripts/test installs Debian's chromium)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    reason = _why_no_browser()
    if reason is not None and os.environ.get("REQUIRE_BROWSER"):
        pytest.fail(f"REQUIRE_BROWSER is set but {reason}")
    if reason is not None:
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def console(service_factory: ServiceFactory) -> Service:  # noqa: F811
    """The service with its console on."""
    service: Service = await service_factory(SESSION_KEY=SESSION_KEY)
    return service


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    opened = await context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    opened.on("dialog", lambda dialog: dialogs.append(dialog.message))
    # A Content-Security-Policy violation or a script error shows here.
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield opened
    await context.close()
    assert dialogs == [], f"a script ran in the page: {dialogs}"
    assert [e for e in errors if "401" not in e and "403" not in e] == [], errors


async def sign_in(page: Page, service: Service, token: str = TEST_ADMIN_TOKEN) -> None:
    await page.goto(f"{service.url}/console/")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def screenshot(page: Page, name: str) -> None:
    """Every page is rendered to a picture; with CONSOLE_SCREENSHOTS=1 it lands in
    docs/console/ (the README's), else in a scratch directory (no churn in the repository)."""
    folder = SCREENSHOTS if os.environ.get("CONSOLE_SCREENSHOTS") else SCRATCH
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture
async def asgi_console(redis: ArqRedis) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    """The web app in-process (ASGI) with the console on, over real Redis, and tenant acme."""
    settings = make_settings(SESSION_KEY=SESSION_KEY)
    res = await Resources.create(settings)
    await res.tenants.put(make_tenant_config())
    async with asgi_client(create_app(settings, resources=res)) as client:
        yield client, res
    await res.aclose()
