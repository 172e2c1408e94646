"""Across plugins: a Shopify order to a selected state goes to Vinoshipper, Vinoshipper ships it, and the
tracking number reaches the Shopify order as a fulfillment; both sandboxes over HTTP."""

import pytest

from plugins.shopify.sandbox import create_app as create_shopify_sandbox
from tests.framework.conftest import run_jobs
from tests.plugins.shopify.conftest import CLIENT_ID, CLIENT_SECRET, SHOP
from tests.plugins.shopify.stores import mapped_store
from tests.plugins.vintrace.test_with_shopify import signed_delivery
from wms.extensions import db
from wms.sandbox.harness import SandboxServer

from .test_plugin_orders import poll, record


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.vinoshipper", "plugins.shopify"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_RETRY_BACKOFF": (1, 1, 1), "VINOSHIPPER_BACKOFF_SECONDS": 0.01}


@pytest.fixture
def shopify():
    app = create_shopify_sandbox({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP]})
    with SandboxServer(app) as server:
        yield server


def test_vinoshipper_tracking_reaches_the_shopify_order(app, vs_plugin, stocked, sandbox, shopify):
    warehouse, _ = stocked
    shop = shopify.app.sandbox.shops[SHOP]
    shop.add_product("Estate Cabernet Sauvignon", [{"sku": "CAB21-750", "price": "48.00"}], stock=50)
    store = mapped_store(app, shopify, warehouse, order_status="any")

    placed = shop.place_order([{"variant_id": shop.variant_by_sku("CAB21-750").id, "quantity": 6}])
    payload = shopify.app.sandbox.payloads.order(shop, placed, "orders/create")
    assert signed_delivery(app.test_client(), store, "orders/create", payload, f"evt-{placed.id}").status_code == 200
    run_jobs(app)
    from wms.core.models import Order
    order = db.session.query(Order).filter_by(store_id=store.id).one()
    assert record(order).status == "synced"                                  # sent to Vinoshipper (CA)

    number = record(order).remote_reference
    sandbox.advance(number)                                                  # label created
    sandbox.advance(number, tracking_numbers=["1Z2212000300000099"])         # carrier scan
    poll(app)
    run_jobs(app)

    fulfillments = [shop.fulfillments[f] for f in shop.orders[placed.id].fulfillment_ids]
    assert len(fulfillments) == 1
    assert "1Z2212000300000099" in str(fulfillments[0].tracking)
