"""Orders in (poll; webhooks are in test_plugin_connection), mirrored out, tracking back, tags."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from plugins.woocommerce import catalog, orders
from plugins.woocommerce.plugin import plugin
from tests.factories import bin_of
from wms.core.models import Order, Product
from wms.core.services import inventory
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.plugins.models import ProductMapping, Store, SyncRecord

from .conftest import jobs


def setup_catalog(shop, store, warehouse, stock=20):
    store.add_product(name="Estate Cabernet", sku="CAB", regular_price="40.00", manage_stock=True, stock_quantity=stock)
    parent = store.add_product(name="Rosé", sku="ROSE", type="variable")
    store.add_variation(parent, sku="ROSE-375", regular_price="15.00", manage_stock=True, stock_quantity=stock)
    catalog.sync_products(db.session.get(Store, shop.id))
    db.session.commit()
    for sku in ("CAB", "ROSE-375"):
        inventory.receive(db.session.scalar(select(Product).where(Product.sku == sku)), bin_of(warehouse), stock,
                          reference="PO-1")
    db.session.commit()


def poll(web, shop):
    return web.post(f"/plugins/woocommerce/stores/{shop.id}/poll-orders", follow_redirects=True).get_data(as_text=True)


def wms_orders():
    return db.session.scalars(select(Order).order_by(Order.id)).all()


BILLING = {"first_name": "Avery", "last_name": "Chen", "email": "avery@example.com", "address_1": "1 Vine St",
           "city": "Napa", "state": "CA", "postcode": "94558", "country": "US"}


def test_poll_imports_paid_orders_once_and_holds_unknown_skus(web, app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    paid = store.place_paid_order([{"sku": "CAB", "quantity": 2}, {"sku": "ROSE-375", "quantity": 1}], BILLING)
    store.add_product(name="Not in the WMS", sku="NEW-1", regular_price="9.00")
    unknown = store.place_paid_order([{"sku": "NEW-1", "quantity": 1}])
    from plugins.woocommerce import store as woo_store
    woo_store.make_client(db.session.get(Store, shop.id)).create_order(
        {"status": "pending", "line_items": [{"sku": "CAB", "quantity": 1}]})
    db.session.commit()
    page = poll(web, shop)
    assert "2 created" in page and "1 filtered" in page
    first, second = wms_orders()
    assert (first.remote_id, first.number, first.customer_email, first.ship_city) == (
        str(paid["id"]), f"#{paid['number']}", "avery@example.com", "Napa")
    assert [(l.sku, l.quantity, l.unit_price) for l in first.lines] == [("CAB", 2, Decimal("40.00")),
                                                                        ("ROSE-375", 1, Decimal("15.00"))]
    assert second.remote_id == str(unknown["id"]) and second.status == "on_hold" and "NEW-1" in second.hold_reason
    store.advance_clock(60)
    page = poll(web, shop)
    assert len(wms_orders()) == 2 and "created" not in page.split("Orders read from WooCommerce:")[1].split(".")[0]


def test_order_cancelled_in_woo_is_cancelled_in_the_wms(web, app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    paid = store.place_paid_order([{"sku": "CAB", "quantity": 2}], BILLING)
    poll(web, shop)
    store.advance_clock(5)
    from plugins.woocommerce import store as woo_store
    woo_store.make_client(db.session.get(Store, shop.id)).update_order(paid["id"], {"status": "cancelled"})
    db.session.commit()
    assert "1 cancelled" in poll(web, shop)
    assert wms_orders()[0].status == "cancelled"


def enable_mirror(shop, **settings):
    shop = db.session.get(Store, shop.id)
    shop.settings = {**shop.settings, "mirror_orders": True, **settings}
    db.session.commit()
    return shop


def wms_order(warehouse, number="M-1", email="jordan@example.com", sku="CAB", quantity=3):
    order = order_service.create_order(order_service.OrderInput(
        lines=[order_service.LineInput(sku=sku, quantity=quantity, unit_price=Decimal("40.00"))], number=number,
        warehouse=warehouse, shipping_process=warehouse.shipping_processes[0],
        details={"customer_name": "Jordan Blake", "customer_email": email, "ship_name": "Jordan Blake",
                 "ship_address1": "2 Oak Ave", "ship_city": "Sonoma", "ship_state": "CA", "ship_postal_code": "95476"}))
    db.session.commit()
    return order


def mirror_record(shop, order):
    return db.session.scalar(select(SyncRecord).where(SyncRecord.object_type == f"order@{shop.id}",
                                                      SyncRecord.object_id == order.id))


def test_mirrored_order_is_created_as_processing_and_not_deducted_twice(web, app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    jobs(app)
    assert store.stock_levels(["CAB"])[0]["stock_quantity"] == 20
    enable_mirror(shop)
    order = wms_order(warehouse)
    jobs(app)
    record = mirror_record(shop, order)
    assert record.status == "synced" and "processing" in record.message
    woo_order = store.order(int(record.remote_reference))
    assert woo_order["status"] == "processing" and woo_order["billing"]["email"] == "jordan@example.com"
    assert woo_order["customer_id"] == store.find_customer("jordan@example.com")["id"]
    assert {m["key"]: m["value"] for m in woo_order["meta_data"]}["_wms_source_id"] == str(order.id)
    # WooCommerce lowered its stock for the processing order; the push put the WMS figure back: 20 - 3
    assert store.stock_levels(["CAB"])[0]["stock_quantity"] == 17
    assert "1 ignored" in poll(web, shop) and len(wms_orders()) == 1    # never imported back
    second = wms_order(warehouse, number="M-2")
    jobs(app)
    assert store.order(int(mirror_record(shop, second).remote_reference))["customer_id"] == woo_order["customer_id"]
    page = web.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "WooCommerce" in page and "SYNCED" in page


@pytest.mark.parametrize("mode", ["absolute", "delta"])
def test_cancelling_a_mirrored_order_cancels_its_woo_copy_and_woo_gives_the_stock_back_once(
        web, app, shop, store, warehouse, mode):
    setup_catalog(shop, store, warehouse)
    enable_mirror(shop, stock_mode=mode)
    jobs(app)
    order = wms_order(warehouse)
    jobs(app)
    woo_id = int(mirror_record(shop, order).remote_reference)
    assert store.stock_levels(["CAB"])[0]["stock_quantity"] == 17
    order_service.cancel(order, reason="Customer changed their mind")
    db.session.commit()
    jobs(app)
    assert store.order(woo_id)["status"] == "cancelled"
    assert store.stock_levels(["CAB"])[0]["stock_quantity"] == 20     # the WMS available again, not 23
    cancel = db.session.scalar(select(SyncRecord).where(SyncRecord.object_type == f"cancel@{shop.id}"))
    assert cancel.status == "synced" and f"#{store.order(woo_id)['number']}" in cancel.message
    orders.cancel_mirror(db.session.get(Store, shop.id), order)     # a repeated job changes nothing
    db.session.commit()
    jobs(app)
    assert store.stock_levels(["CAB"])[0]["stock_quantity"] == 20
    assert "Cancelled in WooCommerce" in web.get(f"/orders/{order.id}").get_data(as_text=True)


def test_an_order_cancelled_before_its_mirror_was_made_is_never_made(app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    enable_mirror(shop)
    order = wms_order(warehouse)
    order_service.cancel(order)
    db.session.commit()
    jobs(app)
    assert mirror_record(shop, order).status == "not_required"
    assert not [o for o in store.orders.values() if o["meta_data"]]


def test_mirrored_orders_can_share_one_customer(app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    enable_mirror(shop, mirror_customer="shared", shared_customer_email="orders@winery.example")
    first, second = wms_order(warehouse, "M-1", "a@example.com"), wms_order(warehouse, "M-2", "b@example.com")
    jobs(app)
    shared = store.find_customer("orders@winery.example")
    assert {store.order(int(mirror_record(shop, o).remote_reference))["customer_id"] for o in (first, second)} == {
        shared["id"]}
    assert store.find_customer("a@example.com") is None


def test_mirror_of_an_unmapped_product_fails_with_the_reason_and_retries(web, app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    from tests.factories import ProductFactory
    other = ProductFactory(sku="PORT-2018", name="Port")
    db.session.commit()
    inventory.receive(other, bin_of(warehouse), 5, reference="PO-2")
    db.session.commit()
    enable_mirror(shop)
    order = wms_order(warehouse, sku="PORT-2018", quantity=1)
    jobs(app)
    record = mirror_record(shop, order)
    assert record.status == "failed" and "Not in WooCommerce: PORT-2018" in record.message
    page = web.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "FAILED" in page and f'title="{record.message}' in page and "Retry" in page
    store.add_product(name="Port", sku="PORT-2018", regular_price="62.00", manage_stock=True, stock_quantity=5)
    catalog.sync_products(db.session.get(Store, shop.id))
    db.session.commit()
    web.post(f"/plugins/woocommerce/records/{record.id}/retry", data={"next": f"/orders/{order.id}"})
    jobs(app)
    assert mirror_record(shop, order).status == "synced"


def test_retried_mirror_finds_the_order_it_made(app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    enable_mirror(shop)
    order = wms_order(warehouse)
    jobs(app)
    record = mirror_record(shop, order)
    made = record.remote_reference
    record.status = "pending"     # as if the answer to the create had been lost
    db.session.commit()
    orders.mirror_order(db.session.get(Store, shop.id), order)
    db.session.commit()
    assert mirror_record(shop, order).remote_reference == made
    assert len([o for o in store.orders.values() if o["meta_data"]]) == 1


def ship(order, tracking="1Z999"):
    order_service.ship(order, carrier="UPS", tracking_number=tracking, tracking_url=f"https://ups.example/{tracking}",
                       auto_pick=True)
    db.session.commit()


def test_shipping_sends_tracking_to_the_customer_and_completes_the_order_once(web, app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    paid = store.place_paid_order([{"sku": "CAB", "quantity": 2}], BILLING)
    poll(web, shop)
    order = wms_orders()[0]
    ship(order)
    jobs(app)
    notes = [n for n in store.order_notes(paid["id"]) if n["customer_note"]]
    assert [n["note"] for n in notes] == ["Your order has shipped with UPS, tracking number 1Z999: "
                                          "https://ups.example/1Z999."]
    assert store.order(paid["id"])["status"] == "completed"
    record = db.session.scalar(select(SyncRecord).where(SyncRecord.object_type == f"shipment@{shop.id}"))
    assert record.status == "synced"
    orders.push_tracking(db.session.get(Store, shop.id), order.shipments[0])   # a job that runs twice
    db.session.commit()
    assert len([n for n in store.order_notes(paid["id"]) if n["customer_note"]]) == 1


def test_tags_and_notes_are_written_once(app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    paid = store.place_paid_order([{"sku": "CAB", "quantity": 1}], BILLING)
    orders.poll_orders(db.session.get(Store, shop.id))
    db.session.commit()
    order, woo_store_row = wms_orders()[0], db.session.get(Store, shop.id)
    for _ in range(2):
        assert plugin.tag_order(woo_store_row, order, ["vintrace-order-created"], "Vintrace Sales Order SO-1")
    assert plugin.tag_order(woo_store_row, order, ["club"])
    meta = {m["key"]: m["value"] for m in store.order(paid["id"])["meta_data"]}
    assert meta["wms_tags"] == "vintrace-order-created,club"
    assert [n["note"] for n in store.order_notes(paid["id"])].count("Vintrace Sales Order SO-1") == 1
    variation = db.session.scalar(select(ProductMapping).where(ProductMapping.remote_sku == "ROSE-375"))
    for _ in range(2):
        assert plugin.tag_product(woo_store_row, variation, ["winedirect-managed", "old"])
    plugin.tag_product(woo_store_row, variation, [], remove_tags=["old"])
    rendered = store.product(int(variation.remote_variant_id))
    assert {m["key"]: m["value"] for m in rendered["meta_data"]}["wms_tags"] == "winedirect-managed"


def test_order_tag_requests_from_other_plugins_go_through_the_outbox(app, shop, store, warehouse):
    setup_catalog(shop, store, warehouse)
    paid = store.place_paid_order([{"sku": "CAB", "quantity": 1}], BILLING)
    orders.poll_orders(db.session.get(Store, shop.id))
    db.session.commit()
    from wms import outbox
    outbox.emit("order.tag_requested", {"order_id": wms_orders()[0].id, "tags": ["gift"], "note": "A gift"})
    db.session.commit()
    jobs(app)
    meta = {m["key"]: m["value"] for m in store.order(paid["id"])["meta_data"]}
    assert meta["wms_tags"] == "gift"
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
