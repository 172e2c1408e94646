"""Tags other plugins ask for reach the sandbox's orders and products (outbox topics
order.tag_requested and product.tag_requested, run by the worker through the plugin)."""

import pytest
from sqlalchemy import select

from plugins.shopify.client import ShopifyRejected
from plugins.shopify.tags import clean_tags
from tests.factories import ProductFactory
from tests.framework.conftest import run_jobs
from wms import outbox
from wms.core.models import OutboxMessage
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.plugins.models import ProductMapping

from .stores import activate_plugin, connected_store
from .test_sandbox_client import add_wine, place


@pytest.fixture
def app_config(redis_url):
    return {"WMS_PLUGINS": ["plugins.shopify"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_RETRY_BACKOFF": (1, 1, 1)}


@pytest.fixture
def store(app, server, sandbox, shop_url, warehouse):
    activate_plugin()
    return connected_store(sandbox, shop_url)


def wms_order(store, remote_id, number="#1001"):
    order = order_service.create_order(order_service.OrderInput(
        number=number, source="shopify", store_id=store.id, remote_id=str(remote_id), unknown_sku="hold",
        lines=[order_service.LineInput(sku="CAB-2019", quantity=1)]))
    db.session.commit()
    return order


def emit(topic, payload):
    outbox.emit(topic, payload)
    db.session.commit()


def messages(topic):
    db.session.expire_all()
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == topic)
                              .order_by(OutboxMessage.id)).all()


def test_order_tag_requested_tags_the_shopify_order_once(app, store, server, shop):
    add_wine(shop)
    placed = place(server, {"sku": "CAB-2019", "quantity": 1}, tags=["web"])
    order = wms_order(store, placed["id"])
    emit("order.tag_requested", {"order_id": order.id, "tags": ["vintrace-order-created"],
                                 "note": "Vintrace sales order SO-1"})
    emit("order.tag_requested", {"order_id": order.id, "tags": ["vintrace-order-created", " "]})  # a repeat
    run_jobs(app)
    assert shop.orders[placed["id"]].tags == ["web", "vintrace-order-created"]
    assert shop.orders[placed["id"]].note is None  # the merchant's note is never overwritten
    assert [m.status for m in messages("order.tag_requested")] == ["done", "done"]


def test_an_order_stored_by_gid_is_tagged_too(app, store, server, shop):
    add_wine(shop)
    placed = place(server, {"sku": "CAB-2019", "quantity": 1})
    order = wms_order(store, placed["admin_graphql_api_id"])
    emit("order.tag_requested", {"order_id": order.id, "tags": ["vintrace-order-error"]})
    run_jobs(app)
    assert shop.orders[placed["id"]].tags == ["vintrace-order-error"]


def test_an_order_shopify_does_not_know_fails_visibly(app, store, server, shop):
    order = wms_order(store, 4242)
    emit("order.tag_requested", {"order_id": order.id, "tags": ["vintrace-order-created"]})
    run_jobs(app)
    [message] = messages("order.tag_requested")
    assert message.status == "failed" and "Order does not exist" in message.last_error


def test_product_tag_requested_adds_and_removes_tags_at_the_product(app, store, shop):
    wine = add_wine(shop)
    shopify_product = shop.products[wine.product_id]
    shopify_product.tags = ["winedirect-unsynced", "red"]
    product = ProductFactory(sku="CAB-2019")
    db.session.add(ProductMapping(store_id=store.id, product_id=product.id,
                                  remote_product_id=f"gid://shopify/Product/{wine.product_id}",
                                  remote_variant_id=f"gid://shopify/ProductVariant/{wine.id}", remote_sku="CAB-2019"))
    db.session.commit()
    emit("product.tag_requested", {"product_id": product.id, "tags": ["winedirect-managed"],
                                   "remove_tags": ["winedirect-unsynced", "winedirect-sync-error"],
                                   "source": "winedirect"})
    run_jobs(app)
    assert shopify_product.tags == ["red", "winedirect-managed"]

    emit("product.tag_requested", {"product_id": product.id, "tags": ["winedirect-sync-error"],
                                   "remove_tags": ["winedirect-managed", "winedirect-sync-error"]})
    emit("product.tag_requested", {"product_id": product.id, "tags": ["winedirect-sync-error"],
                                   "remove_tags": ["winedirect-managed"]})  # delivered twice
    run_jobs(app)
    assert shopify_product.tags == ["red", "winedirect-sync-error"]
    assert {m.status for m in messages("product.tag_requested")} == {"done"}


def test_a_transient_failure_is_retried_until_the_tag_is_there(app, store, server, shop):
    from wms.jobs import runner
    add_wine(shop)
    placed = place(server, {"sku": "CAB-2019", "quantity": 1})
    order = wms_order(store, placed["id"])
    server.faults.inject("500", count=4, path="/shops")  # more than the client's own retries
    emit("order.tag_requested", {"order_id": order.id, "tags": ["vintrace-order-created"]})
    run_jobs(app)
    assert shop.orders[placed["id"]].tags == []
    [message] = messages("order.tag_requested")
    assert message.status == "queued" and "RemoteUnavailable" in message.last_error  # waiting for its retry
    assert runner.run(message.id) == "done"
    assert shop.orders[placed["id"]].tags == ["vintrace-order-created"]


def test_clean_tags():
    assert clean_tags([" a ", "", "A", "b", "x" * 300]) == ["a", "b", "x" * 255]


def test_client_removes_tags_and_closes_orders_idempotently(server, shop, client):
    wine = add_wine(shop)
    shop.products[wine.product_id].tags = ["Red", "allocated"]
    product_gid = f"gid://shopify/Product/{wine.product_id}"
    assert client.remove_tags(product_gid, ["red", "not-there"]) == ["allocated"]
    assert client.remove_tags(product_gid, ["red"]) == ["allocated"]
    placed = place(server, {"sku": "CAB-2019", "quantity": 1})
    closed = client.close_order(placed["id"])
    assert closed["closed"] and closed["closedAt"]
    assert client.close_order(placed["admin_graphql_api_id"])["closedAt"] == closed["closedAt"]
    with pytest.raises(ShopifyRejected, match="does not exist"):
        client.remove_tags("gid://shopify/Order/1", ["x"])
