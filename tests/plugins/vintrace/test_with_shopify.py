"""Across plugins: an order placed in the Shopify sandbox arrives by signed webhook, Vintrace gets its
Sales Order, and the Shopify order ends up tagged `vintrace-order-created`; both sandboxes over HTTP."""

import base64
import hashlib
import hmac
import json

import pytest

from plugins.shopify.sandbox import create_app as create_shopify_sandbox
from tests.plugins.shopify.conftest import CLIENT_ID, CLIENT_SECRET, SHOP
from tests.plugins.shopify.stores import mapped_store
from wms.sandbox.harness import SandboxServer

from .conftest import CLIENT_TIMEOUT, run_jobs


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.vintrace", "plugins.shopify"], "REDIS_URL": redis_url,
            "WMS_RELAY_ON_COMMIT": True, "WMS_RETRY_BACKOFF": (1, 1, 1), "VINTRACE_TIMEOUT": CLIENT_TIMEOUT}


@pytest.fixture
def shopify():
    app = create_shopify_sandbox({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP]})
    with SandboxServer(app) as server:
        yield server


def signed_delivery(client, store, topic, payload, event_id):
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return client.post(f"/webhooks/shopify/{store.id}", data=body, headers={
        "X-Shopify-Topic": topic, "X-Shopify-Event-Id": event_id, "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Hmac-Sha256": signature, "Content-Type": "application/json"})


def test_a_shopify_order_reaches_vintrace_and_comes_back_tagged(app, configured, wines, warehouse, server, shopify):
    shop = shopify.app.sandbox.shops[SHOP]
    shop.add_product("2021 Chardonnay 750ml", [{"sku": "CHARD-21", "price": "32.00"}], stock=50)
    store = mapped_store(app, shopify, warehouse, order_status="any")

    placed = shop.place_order([{"variant_id": shop.variant_by_sku("CHARD-21").id, "quantity": 6}])
    payload = shopify.app.sandbox.payloads.order(shop, placed, "orders/create")
    response = signed_delivery(app.test_client(), store, "orders/create", payload, f"evt-{placed.id}")
    assert response.status_code == 200
    run_jobs(app)

    sales_orders = server.app.sandbox.sales_orders(placed.name)
    assert len(sales_orders) == 1
    assert [(i["sku"], i["quantity"]) for i in sales_orders[0]["salesOrderItems"]] == [("CHARD-21", 6)]
    assert "vintrace-order-created" in shop.orders[placed.id].tags
