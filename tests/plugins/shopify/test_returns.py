"""Shopify returns as expected returns: a signed returns/* webhook -> an expected return on the Returns
page -> Receive -> a return movement in the ledger -> the return (and with auto_close the order)
closed at the sandbox."""

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from sqlalchemy import func, select

from plugins.shopify import returns
from tests.conftest import login_as
from tests.factories import ProductFactory
from tests.framework.conftest import run_jobs
from wms.core.models import LocationLevel, StockMovement
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.plugins.models import SyncRecord

from .conftest import CLIENT_SECRET
from .stores import activate_plugin, connected_store
from .test_sandbox_client import add_wine, control, place


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def settings():
    return {"return_sync": True}


@pytest.fixture
def store(app, server, sandbox, shop_url, warehouse, settings):
    activate_plugin()
    return connected_store(sandbox, shop_url, **settings)


@pytest.fixture
def web(app, operator):
    return login_as(app.test_client(), operator)


@pytest.fixture
def wine(app, shop):
    add_wine(shop, "CAB-2019")
    product = ProductFactory(sku="CAB-2019", name="Estate Cabernet 2019")
    db.session.commit()
    return product


@pytest.fixture
def shipped(server, shop, store, warehouse, wine, client):
    """A Shopify order of 2 x CAB-2019, fulfilled at Shopify, and its WMS order."""
    placed = place(server, {"sku": "CAB-2019", "quantity": 2})
    [fo] = client.fulfillment_orders(placed["id"])
    client.create_fulfillment([fo["id"]])
    [line_id] = shop.orders[placed["id"]].line_item_ids
    order = order_service.create_order(order_service.OrderInput(
        number=placed["name"], source="shopify", store_id=store.id, remote_id=str(placed["id"]),
        warehouse=warehouse, unknown_sku="hold",
        lines=[order_service.LineInput(sku="CAB-2019", quantity=2, remote_line_id=str(line_id))]))
    db.session.commit()
    return placed["id"], order


def request_return(server, order_id):
    return control(server, "POST", f"/shops/sandbox-winery.myshopify.com/orders/{order_id}/returns")["id"]


def deliver(app, sandbox, shop, store, topic, return_id, event_id=None):
    """POST the return's webhook to the WMS as Shopify does: raw JSON body, base64 HMAC of it."""
    body = json.dumps(sandbox.payloads.return_request(shop, shop.returns[return_id])).encode()
    signature = base64.b64encode(hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    answer = app.test_client().post(f"/webhooks/shopify/{store.id}", data=body, content_type="application/json",
                                    headers={"X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": signature,
                                             "X-Shopify-Shop-Domain": shop.domain,
                                             "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
                                             "X-Shopify-Webhook-Id": str(uuid.uuid4())})
    assert answer.status_code == 200, answer.text
    run_jobs(app)


def expected(store):
    db.session.expire_all()
    return db.session.scalars(select(SyncRecord).where(SyncRecord.object_type == returns.RECORD_TYPE,
                                                       SyncRecord.store_id == store.id)).all()


def bin_of(warehouse, code="A-01"):
    return next(loc for loc in warehouse.locations if loc.code == code)


def receive(app, web, store, record, location):
    page = web.post(f"/plugins/shopify/stores/{store.id}/returns/{record.id}/receive",
                    data={"location_id": location.id}, follow_redirects=True)
    run_jobs(app)
    return page


def return_movements():
    return db.session.scalars(select(StockMovement).where(StockMovement.kind == "return")).all()


def test_a_return_is_expected_received_into_stock_and_closed_in_shopify(app, web, server, sandbox, shop, store,
                                                                       shipped, wine, warehouse):
    shopify_order_id, order = shipped
    return_id = request_return(server, shopify_order_id)
    deliver(app, sandbox, shop, store, "returns/request", return_id)

    [record] = expected(store)
    assert (record.status, record.data["stage"], record.data["order_id"]) == ("pending", "expected", order.id)
    assert record.remote_reference == f"gid://shopify/Return/{return_id}"
    assert [(line["sku"], line["product_id"], line["quantity"]) for line in record.data["lines"]] == [
        ("CAB-2019", wine.id, 2)]
    page = web.get(f"/plugins/shopify/stores/{store.id}/returns")
    assert page.status_code == 200 and record.data["return_name"] in page.text and "Receive" in page.text

    shelf = bin_of(warehouse)
    page = receive(app, web, store, record, shelf)
    assert "received into" in page.text
    [movement] = return_movements()
    assert (movement.product_id, movement.to_location_id, movement.quantity) == (wine.id, shelf.id, 2)
    assert record.data["return_name"] in movement.reference
    assert db.session.get(LocationLevel, (wine.id, shelf.id)).on_hand == 2
    assert shop.returns[return_id].status == "CLOSED"
    assert shop.orders[shopify_order_id].closed_at is None  # auto_close is off
    [record] = expected(store)
    assert (record.status, record.data["stage"]) == ("synced", "closed")

    again = receive(app, web, store, record, shelf)
    assert "received already" in again.text and len(return_movements()) == 1


@pytest.mark.parametrize("settings", [{"return_sync": True, "auto_close": True}])
def test_auto_close_closes_the_order_too(app, web, server, sandbox, shop, store, shipped, warehouse):
    shopify_order_id, _ = shipped
    return_id = request_return(server, shopify_order_id)
    deliver(app, sandbox, shop, store, "returns/request", return_id)
    [record] = expected(store)
    receive(app, web, store, record, bin_of(warehouse))
    assert shop.returns[return_id].status == "CLOSED"
    assert shop.orders[shopify_order_id].closed_at is not None
    [record] = expected(store)
    assert record.status == "synced" and record.data["order_closed"] is True


def test_duplicate_and_out_of_order_deliveries_make_one_expected_return(app, sandbox, shop, store, server, shipped,
                                                                       client):
    shopify_order_id, _ = shipped
    return_id = request_return(server, shopify_order_id)
    client.approve_return(f"gid://shopify/Return/{return_id}")
    deliver(app, sandbox, shop, store, "returns/approve", return_id)   # arrives first
    deliver(app, sandbox, shop, store, "returns/request", return_id, event_id="evt-1")
    deliver(app, sandbox, shop, store, "returns/request", return_id, event_id="evt-1")  # duplicate delivery
    [record] = expected(store)
    assert record.data["shopify_status"] == "OPEN" and record.status == "pending"


def test_a_return_declined_in_shopify_is_no_longer_expected(app, web, sandbox, shop, store, server, shipped,
                                                            warehouse):
    shopify_order_id, _ = shipped
    return_id = request_return(server, shopify_order_id)
    deliver(app, sandbox, shop, store, "returns/request", return_id)
    shop.returns[return_id].status = "DECLINED"
    deliver(app, sandbox, shop, store, "returns/decline", return_id)
    [record] = expected(store)
    assert record.status == "voided" and "Declined in Shopify" in record.message
    assert record.data["return_name"] not in web.get(f"/plugins/shopify/stores/{store.id}/returns").text
    page = receive(app, web, store, record, bin_of(warehouse))
    assert "no longer expected" in page.text and return_movements() == []


@pytest.mark.parametrize("settings", [{"return_sync": False}])
def test_with_return_sync_off_returns_are_not_imported(app, web, sandbox, shop, store, server, shipped):
    shopify_order_id, order = shipped
    return_id = request_return(server, shopify_order_id)
    deliver(app, sandbox, shop, store, "returns/request", return_id)
    assert expected(store) == []
    assert returns.import_returns_for_order(store, order) == 0
    assert "Return sync is off" in web.get(f"/plugins/shopify/stores/{store.id}/returns").text


def test_a_line_of_an_unknown_product_blocks_receiving_and_changes_nothing(app, web, sandbox, shop, store, server,
                                                                          shipped, warehouse, wine):
    shopify_order_id, order = shipped
    order.lines[0].product_id = None  # as when the SKU was unknown at import
    wine.sku = "CAB-2019-OLD"
    db.session.commit()
    return_id = request_return(server, shopify_order_id)
    deliver(app, sandbox, shop, store, "returns/request", return_id)
    [record] = expected(store)
    assert "Not a WMS product: CAB-2019" in record.message
    page = receive(app, web, store, record, bin_of(warehouse))
    assert "Not a WMS product: CAB-2019" in page.text
    assert return_movements() == [] and expected(store)[0].data["stage"] == "expected"
    assert shop.returns[return_id].status == "REQUESTED"


def test_reconciliation_imports_missed_returns_once(app, sandbox, shop, store, server, shipped):
    shopify_order_id, order = shipped
    request_return(server, shopify_order_id)
    assert returns.import_returns_for_order(store, order) == 1
    db.session.commit()
    assert returns.import_returns_for_order(store, order) == 0
    assert len(expected(store)) == 1


def test_a_failed_close_is_visible_and_retried_from_the_page(app, web, sandbox, shop, store, server, shipped,
                                                             warehouse):
    shopify_order_id, _ = shipped
    return_id = request_return(server, shopify_order_id)
    deliver(app, sandbox, shop, store, "returns/request", return_id)
    [record] = expected(store)
    shop.returns[return_id].status = "CANCELED"   # cancelled in Shopify while the parcel travelled
    receive(app, web, store, record, bin_of(warehouse))
    [record] = expected(store)
    assert record.status == "failed" and "canceled in Shopify and cannot be closed" in record.message
    assert len(return_movements()) == 1  # the stock that arrived stays received
    assert "Retry closing in Shopify" in web.get(f"/plugins/shopify/stores/{store.id}/returns").text

    shop.returns[return_id].status = "OPEN"       # reopened by the merchant
    web.post(f"/plugins/shopify/stores/{store.id}/returns/{record.id}/retry")
    run_jobs(app)
    assert shop.returns[return_id].status == "CLOSED"
    assert expected(store)[0].status == "synced" and len(return_movements()) == 1


def test_object_ids_fit_32_bits_and_collisions_move_on(app, store):
    first = returns._free_object_id(store, "gid://shopify/Return/9007199254740993")
    assert 0 < first < 2 ** 31
    db.session.add(SyncRecord(plugin="shopify", store_id=store.id, object_type=returns.RECORD_TYPE, object_id=first,
                              remote_reference="gid://shopify/Return/other"))
    db.session.commit()
    assert returns._free_object_id(store, "gid://shopify/Return/9007199254740993") == first % (2 ** 31 - 1) + 1
    assert db.session.scalar(select(func.count()).select_from(SyncRecord)) == 1
