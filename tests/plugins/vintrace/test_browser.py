"""An admin runs Sync Orders from the Vintrace Settings page in Chromium and reads the per-order results."""

import pytest

from tests.factories import AdminFactory
from wms.extensions import db

from .conftest import API_KEY, CLIENT_TIMEOUT, run_jobs, store_order


@pytest.fixture
def app_config(redis_url):
    return {"WTF_CSRF_ENABLED": True, "WMS_PLUGINS": ["plugins.vintrace"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_RETRY_BACKOFF": (1, 1, 1), "VINTRACE_TIMEOUT": CLIENT_TIMEOUT}


@pytest.mark.browser
def test_sync_orders_from_the_settings_page_lists_each_result(app, configured, wines, shop, sandbox, page,
                                                               live_server, sign_in, shoot):
    store_order(shop, "#1001", [("CHARD-21", 1, "32.00")])
    store_order(shop, "#1002", [("CAB-20", 1, "49.00")])       # Vintrace says 45.00: fails
    store_order(shop, "#1003", [("ROSE-23", 1, "20.00")])      # Vintrace says 24.00: fails, and stays wrong
    run_jobs(app)
    sandbox.set_price("20CAB/750", "Retail", "49.00")          # the fix for #1002 only
    admin = AdminFactory(email="boss@winery.test")
    db.session.commit()

    sign_in(page, admin.email)
    page.click("header nav >> text=Vintrace")
    page.wait_for_selector("#sync-orders")
    assert API_KEY not in page.content()
    page.fill("#sync-orders", "#1001, #1002\n#1003 #4040")
    page.click("#sync-orders-submit")
    page.wait_for_selector("#sync-results")
    shoot(page, "vintrace-sync-orders")

    rows = {row.get_attribute("data-order"): row.inner_text() for row in page.query_selector_all("#sync-results tr.sync-result")}
    assert list(rows) == ["#1001", "#1002", "#1003", "#4040"]
    assert "success" in rows["#1001"] and "Already in Vintrace" in rows["#1001"]
    assert "success" in rows["#1002"] and sandbox.sales_orders("#1002")[0]["code"] in rows["#1002"]
    assert "failed" in rows["#1003"] and "price mismatch" in rows["#1003"] and "SKU ROSE-23" in rows["#1003"]
    assert "failed" in rows["#4040"] and "No order named" in rows["#4040"]
    assert [len(sandbox.sales_orders(n)) for n in ("#1001", "#1002", "#1003")] == [1, 1, 0]
