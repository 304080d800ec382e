"""Headless Chromium (Debian's, driven by Playwright) against pytest-django's live server.

Playwright's sync API runs an event loop in the test thread, which trips Django's async-unsafe guard on
every ORM call the test makes; the live server runs in its own thread and is unaffected.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "pw-for-tests-only"  # the password tests/conftest.py's make_user gives every user


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        reason = f"Chromium is not installed at {CHROMIUM}; run `make browser-deps` (apt-get install chromium)."
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} REQUIRE_BROWSER=1 makes this a failure.")
        pytest.skip(f"{reason} Set REQUIRE_BROWSER=1 to fail instead of skipping.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def site_url(live_server, transactional_db, settings):
    """The live server's URL, with cookies that work over its plain http."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return live_server.url


@pytest.fixture
def page(browser, site_url):
    context = browser.new_context(base_url=site_url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def console_page(browser, site_url):
    """A tab on the console at 1400×900 (the size its pages are checked at)."""
    context = browser.new_context(base_url=site_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, username: str) -> None:
    """Sign in through the console's own login page (a fresh session each time)."""
    page.context.clear_cookies()
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form.card button[type=submit]")
    page.wait_for_selector("header.top .who")


@pytest.fixture
def log_in(page):
    """Log a user in through the admin login form (a fresh session each time)."""

    def log_in_as(username: str):
        page.context.clear_cookies()
        page.goto("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#user-tools")

    return log_in_as


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
