"""Tracking back to Shopify: an order from the sandbox ships in the WMS and the sandbox ends with one
fulfillment, at the order's location, with the carrier, tracking number and URL; a repeated job or a
lost answer never makes a second one."""

import pytest
from flask import current_app

from plugins.shopify import fulfillment
from tests.factories import ProductFactory, WarehouseFactory, bin_of
from tests.framework.conftest import run_jobs
from wms.core.models import Order
from wms.core.services import inventory
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.plugins.models import SyncRecord

from .conftest import SHOP, connect_store, control_get, control_post, map_product, subscribe


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def shipped_setup(shopify_active, sandbox, server):
    cellar = WarehouseFactory(code="CEL")
    wines = [ProductFactory(sku="CAB-21"), ProductFactory(sku="PN-22")]
    db.session.commit()
    for wine in wines:
        inventory.receive(wine, bin_of(cellar), 10)
    db.session.commit()
    store = connect_store(sandbox, server, warehouses=[cellar])
    for wine in wines:
        map_product(server, store, wine, stock=10)
    subscribe(store)
    placed = control_post(server, f"shops/{SHOP}/orders", {"lines": [{"sku": "CAB-21", "quantity": 2},
                                                                      {"sku": "PN-22", "quantity": 1}]})
    settle(server)
    order = db.session.query(Order).filter_by(store_id=store.id).one()
    return store, order, placed


def settle(server):
    control_post(server, "webhooks/wait", {"timeout": 10})
    run_jobs(current_app._get_current_object())


def ship(order):
    shipment = order_service.ship(order, carrier="UPS", tracking_number="1Z999AA10123456784",
                                  tracking_url="https://www.ups.com/track?tracknum=1Z999AA10123456784", auto_pick=True)
    db.session.commit()
    return shipment


def test_shipping_in_the_wms_fulfills_in_shopify_with_tracking(shipped_setup, server):
    store, order, placed = shipped_setup
    shipment = ship(order)
    settle(server)
    [made] = control_get(server, f"shops/{SHOP}/fulfillments", order_id=placed["id"])["fulfillments"]
    assert made["tracking"] == [{"company": "UPS", "number": "1Z999AA10123456784",
                                 "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784"}]
    assert made["notify_customer"] is True
    assert sorted(line["quantity"] for line in made["lines"]) == [1, 2]
    assert f"gid://shopify/Location/{made['location_id']}" == store.locations[0].remote_id
    record = fulfillment.record_for(shipment)
    assert record.status == "synced" and "1Z999AA10123456784" in record.message


def test_a_repeated_job_does_not_fulfill_twice(shipped_setup, server):
    store, order, placed = shipped_setup
    shipment = ship(order)
    settle(server)
    fulfillment.fulfill_job({"shipment_id": shipment.id})
    # Even with the sync record lost (an answer that never came back), Shopify's fulfillment orders show
    # nothing left to fulfil, so nothing is sent again.
    db.session.query(SyncRecord).filter_by(object_type=fulfillment.RECORD).update({"status": "pending"})
    db.session.commit()
    fulfillment.fulfill_job({"shipment_id": shipment.id})
    db.session.commit()
    assert len(control_get(server, f"shops/{SHOP}/fulfillments", order_id=placed["id"])["fulfillments"]) == 1
    assert "already shows these units as fulfilled" in fulfillment.record_for(shipment).message


def test_the_order_page_shows_the_shopify_panel(shipped_setup, server, app, admin):
    from tests.conftest import login_as
    store, order, placed = shipped_setup
    ship(order)
    settle(server)
    page = login_as(app.test_client(), admin).get(f"/orders/{order.id}")
    assert page.status_code == 200
    assert "shopify-panel" in page.text and "synced" in page.text
