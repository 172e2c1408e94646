"""Orders from the Shopify sandbox: signed webhooks delivered over HTTP to the running WMS, processed by
the jobs; duplicates, out-of-order deliveries, filters, routing by location, unknown SKUs, cancellation,
reconciliation of missed webhooks, uninstall and the privacy webhooks."""

import base64
import hashlib
import hmac
import json

import pytest
import requests
from flask import current_app

from plugins.shopify import orders as shopify_orders
from tests.factories import ProductFactory, WarehouseFactory
from tests.framework.conftest import run_jobs
from wms.core.models import Order
from wms.extensions import db
from wms.plugins.models import WebhookEvent

from .conftest import CLIENT_ID, SHOP, connect_store, control_get, control_post, map_product, subscribe


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def warehouses(app):
    made = [WarehouseFactory(code="CEL"), WarehouseFactory(code="TAS")]
    db.session.commit()
    return made


@pytest.fixture
def wine(app):
    product = ProductFactory(sku="CAB-21")
    db.session.commit()
    return product


@pytest.fixture
def store(shopify_active, sandbox, server, warehouses, wine):
    connected = connect_store(sandbox, server, warehouses=warehouses)
    map_product(server, connected, wine, stock=20)
    subscribe(connected)
    return connected


def settle(server):
    control_post(server, "webhooks/wait", {"timeout": 10})
    run_jobs(current_app._get_current_object())


def place(server, **body):
    body.setdefault("lines", [{"sku": "CAB-21", "quantity": 2}])
    return control_post(server, f"shops/{SHOP}/orders", body)


def compliance_to(server, wms_url):
    """Where the app's compliance webhooks go (set in the app's configuration in real Shopify)."""
    control_post(server, f"apps/{CLIENT_ID}/compliance", {"uri": f"{wms_url}/plugins/shopify/webhooks/compliance"})


def shop_orders(store):
    db.session.expire_all()
    return db.session.query(Order).filter_by(store_id=store.id).all()


def location_ids(server):
    shop = next(s for s in control_get(server, "shops")["shops"] if s["domain"] == SHOP)
    return [loc["id"] for loc in shop["locations"]]


def test_a_test_order_becomes_one_wms_order(store, server, warehouses, wine):
    placed = place(server)
    settle(server)
    [order] = shop_orders(store)
    assert order.remote_id == str(placed["id"]) and order.source == "shopify"
    assert order.number == placed["name"] and order.status in ("open", "on_hold")
    assert [(line.sku, line.quantity) for line in order.lines] == [("CAB-21", 2)]
    assert order.customer_email == "customer@example.com" and order.ship_city == "Sonoma"


def test_a_forged_webhook_is_refused_with_401(store, shopify_active):
    body = json.dumps({"id": 1, "line_items": []}).encode()
    forged = base64.b64encode(hmac.new(b"not the secret", body, hashlib.sha256).digest()).decode()
    answer = requests.post(f"{shopify_active}/webhooks/shopify/{store.id}", data=body, timeout=5, headers={
        "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": forged, "X-Shopify-Event-Id": "e-1",
        "Content-Type": "application/json"})
    assert answer.status_code == 401
    assert db.session.query(WebhookEvent).count() == 0


def test_a_duplicated_webhook_makes_one_order(store, server):
    placed = place(server)
    control_post(server, f"shops/{SHOP}/webhooks/deliver", {"topic": "orders/create", "order_id": placed["id"],
                                                            "duplicates": 3})
    control_post(server, f"shops/{SHOP}/webhooks/deliver", {"topic": "orders/updated", "order_id": placed["id"]})
    settle(server)
    assert len(shop_orders(store)) == 1


def test_paid_before_create_still_makes_one_order(shopify_active, sandbox, server, warehouses, wine):
    store = connect_store(sandbox, server, warehouses=warehouses)
    map_product(server, store, wine, stock=20)
    placed = place(server)                       # no subscription yet: orders/create is not delivered now
    subscribe(store)
    control_post(server, f"shops/{SHOP}/webhooks/deliver", {"topic": "orders/paid", "order_id": placed["id"]})
    settle(server)
    [order] = shop_orders(store)
    assert order.financial_status == "paid"
    control_post(server, f"shops/{SHOP}/webhooks/deliver", {"topic": "orders/create", "order_id": placed["id"]})
    settle(server)
    assert len(shop_orders(store)) == 1


def test_filters_keep_orders_out_until_they_pass(store, server):
    store.settings = dict(store.settings, financial_status=["paid"])
    db.session.commit()
    pending = place(server, financial_status="PENDING")
    settle(server)
    assert shop_orders(store) == []
    paid = place(server, financial_status="PAID")
    settle(server)
    assert [o.remote_id for o in shop_orders(store)] == [str(paid["id"])]
    assert pending["id"] != paid["id"]


def test_orders_are_routed_by_their_shopify_location(store, server, warehouses):
    first, second = location_ids(server)
    place(server, location_id=second)
    place(server, location_id=first)
    settle(server)
    by_number = sorted(shop_orders(store), key=lambda o: o.id)
    assert [o.warehouse.code for o in by_number] == ["TAS", "CEL"]
    assert by_number[0].shipping_process_id == warehouses[1].shipping_processes[0].id


def test_an_unmapped_location_routes_to_the_default(store, server, warehouses):
    second = store.locations[1]
    second.warehouse_id, second.shipping_process_id = None, None
    db.session.commit()
    place(server, location_id=location_ids(server)[1])
    settle(server)
    [order] = shop_orders(store)
    assert order.warehouse.code == "CEL"


def test_an_unknown_sku_holds_the_order_with_a_clear_message(store, server):
    control_post(server, f"shops/{SHOP}/products", {"title": "Mystery", "variants": [{"sku": "NOPE-1", "stock": 5}]})
    place(server, lines=[{"sku": "NOPE-1", "quantity": 1}, {"sku": "CAB-21", "quantity": 1}])
    settle(server)
    [order] = shop_orders(store)
    assert order.status == "on_hold"
    assert "Unknown SKU NOPE-1" in order.hold_reason
    assert len(order.lines) == 2


def test_a_cancellation_in_shopify_cancels_the_wms_order(store, server):
    placed = place(server)
    settle(server)
    control_post(server, f"shops/{SHOP}/orders/{placed['id']}/cancel")
    settle(server)
    [order] = shop_orders(store)
    assert order.status == "cancelled"


def test_reconciliation_picks_up_missed_webhooks_once(shopify_active, sandbox, server, warehouses, wine):
    store = connect_store(sandbox, server, warehouses=warehouses)
    map_product(server, store, wine, stock=20)
    missed = [place(server), place(server)]      # no subscription: both webhooks are "missed"
    assert shop_orders(store) == []
    shopify_orders.reconcile_store_job({"store_id": store.id})
    shopify_orders.reconcile_store_job({"store_id": store.id})
    assert sorted(o.remote_id for o in shop_orders(store)) == sorted(str(m["id"]) for m in missed)


def test_app_uninstalled_marks_the_store_disconnected(store, server):
    control_post(server, f"shops/{SHOP}/webhooks/deliver", {"topic": "app/uninstalled"})
    settle(server)
    db.session.expire_all()
    assert store.status == "disconnected" and "uninstalled" in store.status_message


def test_customers_redact_erases_that_customer(store, server, shopify_active):
    compliance_to(server, shopify_active)
    place(server, email="ada@example.com")
    place(server, email="grace@example.com")
    settle(server)
    control_post(server, f"shops/{SHOP}/webhooks/deliver", {"topic": "customers/redact", "email": "ada@example.com"})
    settle(server)
    by_email = {o.customer_email: o for o in shop_orders(store)}
    assert set(by_email) == {"", "grace@example.com"}
    erased = by_email[""]
    assert (erased.customer_name, erased.ship_address1, erased.ship_city) == ("", "", "")
    stored = [e.payload for e in db.session.query(WebhookEvent).filter_by(store_id=store.id)]
    assert not any("ada@example.com" in payload for payload in stored)
    assert any("grace@example.com" in payload for payload in stored)


def test_shop_redact_erases_every_customer_of_the_store(store, server, shopify_active):
    compliance_to(server, shopify_active)
    place(server, email="ada@example.com")
    settle(server)
    control_post(server, f"shops/{SHOP}/webhooks/deliver", {"topic": "shop/redact"})
    settle(server)
    assert [o.customer_email for o in shop_orders(store)] == [""]
    assert all("@example.com" not in e.payload for e in db.session.query(WebhookEvent).filter_by(store_id=store.id))


def test_a_forged_compliance_webhook_is_refused(store, shopify_active):
    body = json.dumps({"shop_domain": SHOP}).encode()
    answer = requests.post(f"{shopify_active}/plugins/shopify/webhooks/compliance", data=body, timeout=5, headers={
        "X-Shopify-Topic": "shop/redact", "X-Shopify-Hmac-Sha256": "bm90IGl0", "X-Shopify-Shop-Domain": SHOP})
    assert answer.status_code == 401
    assert db.session.query(WebhookEvent).count() == 0


def test_return_sync_subscribes_the_return_topics(store, sandbox):
    topics = {s.topic for s in sandbox.shops[SHOP].subscriptions.values()}
    assert not topics & {"RETURNS_REQUEST", "RETURNS_CLOSE"}
    store.settings = dict(store.settings, return_sync=True)
    db.session.commit()
    subscribe(store)
    topics = {s.topic for s in sandbox.shops[SHOP].subscriptions.values()}
    assert {"RETURNS_REQUEST", "RETURNS_APPROVE", "RETURNS_DECLINE", "RETURNS_CLOSE"} <= topics
