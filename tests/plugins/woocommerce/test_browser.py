"""In Chromium: an admin adds a WooCommerce store, Test Connection shows it ACTIVE, and Sync products shows
its progress and then the result. The sync job runs on the test's thread (as a worker would) while the
page refreshes itself."""

import pytest

from tests.factories import AdminFactory
from wms.extensions import db

from .conftest import CONSUMER_KEY, CONSUMER_SECRET, jobs


@pytest.fixture
def app_config(redis_url, tls, sleeps):
    _, ca_path = tls
    return {"WTF_CSRF_ENABLED": True, "WMS_PLUGINS": ["plugins.woocommerce"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_RETRY_BACKOFF": (1, 1, 1), "WOOCOMMERCE_CA_FILE": ca_path,
            "WOOCOMMERCE_TIMEOUT": (2, 2), "WOOCOMMERCE_SLEEP": sleeps}


@pytest.mark.browser
def test_add_store_test_connection_and_sync_products(app, active, sandbox, store, page, live_server, sign_in, shoot):
    app.config["WMS_PUBLIC_URL"] = live_server
    store.seed_products(300, variable_share=0.2, variations_per_product=4, draft_every=10)
    admin = AdminFactory(email="boss@winery.test")
    db.session.commit()

    sign_in(page, admin.email)
    page.click("header nav >> text=WooCommerce")
    page.click("#add-store")
    page.fill("#f-name", "Online shop")
    page.fill("#f-remote_address", "http://shop.example.com")
    page.fill("#f-consumer_key", CONSUMER_KEY)
    page.fill("#f-consumer_secret", CONSUMER_SECRET)
    page.click("main form button[type=submit]")
    assert "only accepts API keys over HTTPS" in page.inner_text("#f-remote_address-error")

    page.fill("#f-remote_address", sandbox.url)
    page.fill("#f-consumer_key", CONSUMER_KEY)        # keys are never shown back: typed again
    page.fill("#f-consumer_secret", CONSUMER_SECRET)
    page.click("main form button[type=submit]")
    page.wait_for_selector("#woo-store-status")
    assert page.inner_text("#woo-store-status") == "PENDING"

    page.click("#woo-connection button:has-text('Test Connection')")
    page.wait_for_selector(".flash-success:has-text('is ACTIVE')")
    assert page.inner_text("#woo-store-status") == "ACTIVE"
    assert page.locator("#woo-webhook-list tbody tr").count() == 2
    assert CONSUMER_SECRET not in page.content()
    shoot(page, "woocommerce-store-active")

    page.click("#woo-products button:has-text('Sync products')")
    page.wait_for_selector("#sync-progress")
    assert "Queued" in page.inner_text("#sync-progress")
    shoot(page, "woocommerce-sync-queued")
    jobs(app)   # the worker's part; the page refreshes itself meanwhile
    page.wait_for_selector("#sync-result")
    result = page.inner_text("#sync-result")
    assert "300 products and 240 variations read" in result and "24 drafts (will not sell)" in result
    assert "GET /wp-json/wc/v3/products" in page.inner_text("#woo-activity")
    shoot(page, "woocommerce-sync-done")


@pytest.mark.browser
def test_cancelling_a_mirrored_order_on_its_page_cancels_it_in_the_store(app, shop, store, warehouse, page,
                                                                          live_server, sign_in, shoot):
    from plugins.woocommerce.orders import record_for
    from wms.plugins.models import Store

    from .test_plugin_orders import enable_mirror, setup_catalog, wms_order
    setup_catalog(shop, store, warehouse)
    enable_mirror(shop)
    order = wms_order(warehouse)
    jobs(app)
    woo_id = int(record_for("order", db.session.get(Store, shop.id), order.id).remote_reference)
    admin = AdminFactory(email="boss@winery.test")
    db.session.commit()

    sign_in(page, admin.email)
    page.goto(f"{live_server}/orders/{order.id}")
    assert "SYNCED" in page.inner_text(".woo-sync")
    page.fill("#f-cancel-reason", "Customer changed their mind")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel button:has-text('Cancel order')")
    page.wait_for_selector("#cancel-reason")
    jobs(app)   # the worker's part
    page.reload()
    panel = page.inner_text(".woo-sync")
    assert "Cancelled in WooCommerce" in panel
    assert store.order(woo_id)["status"] == "cancelled"
    assert store.stock_levels(["CAB"])[0]["stock_quantity"] == 20
    shoot(page, "woocommerce-mirror-cancelled")
