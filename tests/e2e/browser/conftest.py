"""Browser tests: Debian's Chromium, driven by Playwright, through the pages of the real stack
(the Procfile's web line and a worker, on a real Postgres and NATS, as the e2e tests start it).

Each test leaves screenshots of the pages it saw in ``var/screenshots/`` (not committed) for a
person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "var" / "screenshots"
ALPHA, BETA, ADMIN = "alpha-token", "beta-token", "admin-token"
#: Milliseconds a page may take to show what a test waits for (jobs run meanwhile).
PATIENCE_MS = 120_000


@dataclass
class Site:
    base: str
    api_port: int


@pytest.fixture(scope="module")
def browser():
    """Chromium, headless. Missing, it is an error, not a skip: CI installs it (``.ci/run``).

    One per module, not per session: Playwright's sync API keeps an event loop running in the
    main thread until it stops, and later tests that call ``asyncio.run`` would fail."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="module")
def site(module_deployment) -> Site:
    """The web line with two tenants and an admin, and one worker."""
    api = module_deployment.api(
        API_TOKENS=f"alpha:{ALPHA},beta:{BETA}", ADMIN_TOKEN=ADMIN, SECRET_KEY="s" * 40
    )
    module_deployment.workers_without_metrics()
    return Site(f"http://127.0.0.1:{api.port}", api.port)


@pytest.fixture
def signed_in(browser, site) -> Iterator[Callable]:
    """``signed_in(token, width=1280) -> page``: a fresh browser context, signed in through the
    sign-in form. Contexts are closed after the test."""
    contexts = []

    def open_page(token: str, width: int = 1280):
        context = browser.new_context(
            viewport={"width": width, "height": 900}, accept_downloads=True, base_url=site.base
        )
        contexts.append(context)
        return sign_in(context, site, token)

    yield open_page
    for context in contexts:
        context.close()


def sign_in(context, site: Site, token: str):
    """A new page of ``context``, signed in through the sign-in form, on the upload page."""
    page = context.new_page()
    page.set_default_timeout(PATIENCE_MS)
    page.goto("/signin")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.base}/")
    return page


def shoot(page, name: str) -> Path:
    """A full-page screenshot in ``var/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
