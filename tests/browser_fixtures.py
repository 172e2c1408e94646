"""Browser test infrastructure, for every test folder: the app on a live server, Debian's Chromium
driven by Playwright (one per test session: Playwright's sync API allows one per thread).

* `live_server` serves the test's app (fresh SQLite database, see tests/conftest.py) on 127.0.0.1 in a
  thread; data made in the test with the factories and services must be committed before the browser
  acts (each request runs in its own app context and database session).
* `browser` is one Chromium per test session (launching it is the slow part); `page` is a fresh
  context per test (own cookies), sized like a desktop, with the server as base URL.
* Screenshots go to `test-artifacts/` (git-ignored) through the `shoot` fixture; a failing test
  leaves `test-artifacts/failed-<test>.png` behind.
* A JavaScript error on any page fails the test that loaded it.

Chromium comes from Debian (`apt-get install -y chromium`); `playwright install` is never needed.
Without the browser these tests FAIL, they do not skip: CI must not go green without running them.
"""

import re
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
TIMEOUT_MS = 10_000          # per action / wait; generous for a slow CI runner, short enough to fail fast
PASSWORD = "correct horse battery"  # what tests/factories.py gives every user


@pytest.fixture
def live_server(app):
    """The test's app served over real HTTP on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="wms-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def _chromium_path():
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Browser tests need Chromium and it is not on PATH: install Debian's chromium "
                    "(apt-get install -y chromium). Do not run `playwright install`.", pytrace=False)
    return path


@pytest.fixture(scope="session")
def browser():
    executable = _chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Browser tests need the playwright package: pip install -e '.[test]' "
                    "(and install Debian's chromium; never `playwright install`).", pytrace=False)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception as exc:  # a broken or incompatible Chromium: say which one
            pytest.fail(f"Chromium at {executable} did not start ({exc}). Install Debian's chromium "
                        "(apt-get install -y chromium).", pytrace=False)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _new_page(browser, live_server, **context_options):
    context = browser.new_context(base_url=live_server, **context_options)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    return page


def _finish(page, request, artifacts):
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(artifacts / f"failed-{name}.png"), full_page=True)
        except Exception:  # the page may be gone; the test's own failure is the one that matters
            pass
    errors = page.js_errors
    page.context.close()
    if errors and not (failed is not None and failed.failed):
        pytest.fail(f"JavaScript errors on the page: {errors}", pytrace=False)


@pytest.fixture
def page(browser, live_server, artifacts, request):
    """A fresh browser tab (own cookies) at desktop size, its base URL the live server."""
    page = _new_page(browser, live_server, viewport={"width": 1280, "height": 900})
    yield page
    _finish(page, request, artifacts)


@pytest.fixture
def phone_page(browser, live_server, artifacts, request):
    """A fresh tab the size of a phone (390 x 844, touch, mobile layout)."""
    page = _new_page(browser, live_server, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                     is_mobile=True, has_touch=True)
    yield page
    _finish(page, request, artifacts)


@pytest.fixture
def shoot(artifacts):
    """shoot(page, "name") saves a full-page screenshot as test-artifacts/<name>.png."""
    def shoot(page, name):
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    return shoot


@pytest.fixture
def sign_in():
    """sign_in(page, email[, password]) signs in through the login form and waits for the dashboard."""
    def sign_in(page, email, password=PASSWORD):
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
        page.wait_for_selector("#stat-available")
        return page
    return sign_in
