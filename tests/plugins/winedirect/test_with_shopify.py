"""Across plugins: WineDirect's product sync tags the Shopify product of each wine
(`winedirect-managed`, `winedirect-unsynced`); both sandboxes over HTTP."""

from decimal import Decimal

import pytest

from plugins.shopify.sandbox import create_app as create_shopify_sandbox
from tests.conftest import login_as
from tests.factories import ProductFactory
from tests.framework.conftest import run_jobs
from tests.plugins.shopify.conftest import CLIENT_ID, CLIENT_SECRET, SHOP
from tests.plugins.shopify.stores import mapped_store
from wms.extensions import db
from wms.sandbox.harness import SandboxServer


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.winedirect", "plugins.shopify"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_RETRY_BACKOFF": (1, 1, 1), "WINEDIRECT_HTTP_TIMEOUT": (2, 1)}


@pytest.fixture
def shopify():
    app = create_shopify_sandbox({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP]})
    with SandboxServer(app) as server:
        yield server


def test_winedirect_product_sync_tags_the_shopify_products(app, wd, admin, shopify):
    ProductFactory(sku="CAB-2021", name="Estate Cabernet", retail_price=Decimal("42.00"))
    ProductFactory(sku="ROSE-1", appellation="", alcohol_pct=None)
    db.session.commit()
    shop = shopify.app.sandbox.shops[SHOP]
    cabernet = shop.add_product("Estate Cabernet", [{"sku": "CAB-2021", "price": "42.00"}], stock=0)
    rose = shop.add_product("Rosé", [{"sku": "ROSE-1", "price": "20.00"}], stock=0)
    mapped_store(app, shopify)

    login_as(app.test_client(), admin).post("/plugins/winedirect/sync/products")
    run_jobs(app)
    assert "winedirect-managed" in shop.products[cabernet.id].tags
    assert "winedirect-unsynced" in shop.products[rose.id].tags
