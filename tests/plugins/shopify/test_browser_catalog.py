"""In Chromium: an admin opens a store's Product Mapping page, presses Sync Products, sees the run's
progress, and once the worker has mapped the catalog the page (which polls the progress endpoint)
shows the result lists."""

import pytest

from tests.factories import AdminFactory, ProductFactory
from tests.framework.conftest import run_jobs
from wms.extensions import db

from .stores import activate_plugin, connected_store


@pytest.fixture
def app_config(redis_url):
    return {"WTF_CSRF_ENABLED": True, "WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.mark.browser
def test_sync_products_shows_progress_then_the_results(app, server, sandbox, shop, shop_url, page, live_server,
                                                       sign_in, shoot):
    activate_plugin()
    store = connected_store(sandbox, shop_url)
    ProductFactory(sku="CAB-2019", barcode=None, name="Estate Cabernet")
    admin = AdminFactory(email="boss@winery.test")
    db.session.commit()
    shop.add_product("Cabernet", [{"sku": "CAB-2019"}], stock=3)
    shop.add_product("Blend", [{"sku": "BLEND-22", "title": "750 ml"}], stock=3)
    shop.add_product("Rosé", [{"sku": "ROSE-23", "title": "A"}, {"sku": "ROSE-23", "title": "B"}], stock=3)

    sign_in(page, admin.email)
    page.goto(f"/plugins/shopify/stores/{store.id}/catalog")
    assert "No product sync has run" in page.inner_text("#catalog-progress")
    page.click("#catalog-sync button[type=submit]")
    page.wait_for_selector("#catalog-bar")
    assert "running" in page.inner_text("#catalog-state")
    assert "Waiting for a worker" in page.inner_text("#catalog-phase")
    shoot(page, "shopify-catalog-running")

    run_jobs(app)  # the worker maps the catalog; the page notices through its progress endpoint
    page.wait_for_selector("#catalog-results")
    shoot(page, "shopify-catalog-done")
    assert page.inner_text("#count-matched") == "1"
    assert page.inner_text("#count-created") == "1"
    assert page.inner_text("#count-conflicts") == "2"
    assert "SKU ROSE-23 is on 2 Shopify variants" in page.inner_text("#catalog-conflicts")
    assert "BLEND-22" in page.inner_text("#catalog-created")
    assert "CAB-2019" in page.inner_text("#catalog-matched")
    assert page.inner_text("#catalog-mapped") == "2"
