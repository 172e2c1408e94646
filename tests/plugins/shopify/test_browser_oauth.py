"""In Chromium: an admin adds a Shopify store, presses Install on the sandbox's authorisation page, and
lands back on the store page, connected, with the shop's locations listed."""

import re

import pytest

from wms.extensions import db
from wms.plugins.models import Store

from .conftest import SHOP


@pytest.fixture
def app_config(redis_url):
    return {"WTF_CSRF_ENABLED": True, "WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True}


def test_add_store_install_and_land_connected(shopify_active, server, admin, page, sign_in, shoot):
    sign_in(page, admin.email)
    page.goto("/admin/plugins/shopify")
    page.click("text=+ Add Store")
    page.wait_for_selector("#shopify-add-store")
    page.fill("#f-shop", SHOP)
    page.fill("#f-name", "Online shop")
    page.fill("#f-sandbox_url", server.url)
    shoot(page, "shopify-add-store")
    page.click("#shopify-add-store button[type=submit]")

    page.wait_for_url(re.compile(r".*/admin/oauth/authorize\?.*"))
    assert "Install app on" in page.content()
    shoot(page, "shopify-sandbox-install")
    page.click("button[name=install]")

    page.wait_for_url(re.compile(r".*/admin/stores/\d+$"))
    body = page.inner_text("main")
    assert "Connected Online shop" in body
    assert "Main Cellar" in body and "Tasting Room" in body
    assert "connected" in page.inner_text("main").lower()
    shoot(page, "shopify-store-connected")
    db.session.expire_all()
    store = db.session.query(Store).filter_by(plugin="shopify").one()
    assert store.status == "connected" and len(store.locations) == 2
