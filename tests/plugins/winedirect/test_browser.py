"""In Chromium: an admin opens the WineDirect dashboard, an order is pushed to WineDirect, it shows in the
Orders tab, and after the sandbox ships it the order page's WineDirect panel shows its tracking.

The browser runs in a thread of its own with its own Playwright, so that the database work and the jobs
the test interleaves run on the test's thread while the page waits. The other browser fixtures (live
server, sign-in, screenshots) come from tests/browser_fixtures.py.
"""

import re
import threading

import pytest

from tests.browser_fixtures import CHROMIUM_ARGS, TIMEOUT_MS, _chromium_path
from tests.factories import AdminFactory, ProductFactory
from tests.framework.conftest import run_jobs
from wms.core.models import Order
from wms.extensions import db

from .conftest import Control, configure
from .test_plugin import routed_order, seed_wine


@pytest.fixture
def app_config(redis_url):
    return {"WTF_CSRF_ENABLED": True, "WMS_PLUGINS": ["plugins.winedirect"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_RETRY_BACKOFF": (1, 1, 1)}


def in_browser(app, base_url, artifacts, name, steps):
    """Drive a fresh Chromium in its own thread. `steps(page)` is a generator: each value it yields is a
    function the test's own thread runs (database work and jobs, which need the main thread) and whose
    result is sent back. A failure in the browser is re-raised here, with a screenshot."""
    import queue
    asks, answers, outcome = queue.Queue(), queue.Queue(), {}

    def target():
        from playwright.sync_api import sync_playwright
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=_chromium_path(), args=CHROMIUM_ARGS)
                context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
                context.set_default_timeout(TIMEOUT_MS)
                page = context.new_page()
                errors = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                try:
                    flow = steps(page)
                    request = next(flow, None)
                    while request is not None:
                        asks.put(request)
                        kind, value = answers.get()
                        if kind == "error":
                            raise value
                        try:
                            request = flow.send(value)
                        except StopIteration:
                            request = None
                    if errors:
                        raise AssertionError(f"JavaScript errors on the page: {errors}")
                except BaseException:
                    try:
                        page.screenshot(path=str(artifacts / f"failed-{name}.png"), full_page=True)
                    except Exception:  # noqa: BLE001
                        pass
                    raise
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc
        finally:
            asks.put(None)

    thread = threading.Thread(target=target, name="winedirect-browser", daemon=True)
    thread.start()
    while True:
        request = asks.get(timeout=120)
        if request is None:
            break
        try:
            answers.put(("ok", request()))
        except BaseException as exc:  # noqa: BLE001
            answers.put(("error", exc))
    thread.join(timeout=30)
    if "error" in outcome:
        raise outcome["error"]


@pytest.mark.browser
def test_dashboard_push_an_order_and_see_its_tracking(app, live_server, sign_in, shoot, artifacts, make_server):
    sandbox = make_server({"auto_process": True})
    configure(sandbox.url)
    control = Control(sandbox)
    admin = AdminFactory(email="boss@winery.test")
    ProductFactory(sku="CAB-2021", name="Estate Cabernet 2021")
    db.session.commit()
    seed_wine(control)
    from plugins.winedirect import sync
    seen = {}

    def steps(page):
        sign_in(page, admin.email)
        page.click("header nav >> text=WineDirect")
        page.wait_for_selector("h1:has-text('WineDirect Fulfillment')")
        page.click("button:has-text('Set up warehouses')")
        page.wait_for_selector(".flash:has-text('6 created')")
        assert page.inner_text("#wd-connection-state") == "Connected"
        shoot(page, "winedirect-dashboard")

        def push_order():  # the order is routed to WineDirect and the jobs run
            warehouse = next(w for w in sync.winedirect_warehouses() if w.code == "WD-PSO")
            order = routed_order(warehouse, "#7001")
            run_jobs(app)
            return order.id
        seen["order_id"] = yield push_order
        wd_number = control.orders("#7001")[0]["wineDirectOrderNumber"]

        page.click("#tab-orders")
        row = page.locator(f"#wd-order-{seen['order_id']}")
        row.wait_for()
        assert wd_number in row.inner_text() and "synced" in row.inner_text()
        shoot(page, "winedirect-orders-tab")

        control.post("orders/%237001/advance")  # the sandbox ships it
        page.click("#tab-overview")
        page.click("button:has-text('Sync Shipments')")
        page.wait_for_selector(".flash:has-text('Sync Shipments started')")
        yield lambda: run_jobs(app)

        page.click("#tab-orders")
        page.click(f"#wd-order-{seen['order_id']} a")
        page.wait_for_url(re.compile(rf"/orders/{seen['order_id']}$"))
        panel = page.locator("#winedirect-panel")
        seen["tracking"] = panel.locator(".wd-tracking").inner_text()
        assert wd_number in panel.inner_text() and "Shipped" in panel.inner_text()
        shoot(page, "winedirect-order-panel")

    in_browser(app, live_server, artifacts, "winedirect-dashboard-order", steps)
    assert seen["tracking"].startswith("1ZWD")
    db.session.expire_all()
    shipment = db.session.get(Order, seen["order_id"]).shipments[0]
    assert shipment.tracking_number == seen["tracking"] and shipment.source == "winedirect"
