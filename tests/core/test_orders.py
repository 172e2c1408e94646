"""Orders: reservations, holds, pick, pack, ship, cancel, routing."""

import pytest
from sqlalchemy import func, select

from tests.factories import ProductFactory, WarehouseFactory, bin_of
from wms.core.errors import ServiceError
from wms.core.models import Order, OutboxMessage, Shipment, WarehouseLevel
from wms.core.services import inventory, orders, rebuild
from wms.extensions import db


def level(product, warehouse):
    row = db.session.get(WarehouseLevel, (product.id, warehouse.id), populate_existing=True)
    return (row.on_hand, row.committed, row.available) if row else (0, 0, 0)


def new_order(*lines, **kw):
    return orders.create_order(orders.OrderInput(
        lines=[orders.LineInput(sku=sku, quantity=q) for sku, q in lines], **kw))


@pytest.fixture
def stocked(warehouse, product):
    inventory.receive(product, bin_of(warehouse, "A-01"), 12)
    db.session.commit()
    return product


def test_order_reserves_stock(warehouse, stocked):
    order = new_order(("CAB-2021", 3))
    db.session.commit()
    assert order.status == "open" and order.number.startswith("WMS-")
    assert order.warehouse_id == warehouse.id and order.shipping_process.is_in_house
    assert level(stocked, warehouse) == (12, 3, 9)
    topics = db.session.scalars(select(OutboxMessage.topic)).all()
    assert "order.created" in topics and "order.routed" in topics


def test_short_order_is_held_with_the_shortfall_named(warehouse, stocked):
    order = new_order(("CAB-2021", 15))
    db.session.commit()
    assert order.status == "on_hold"
    assert "CAB-2021: 3 of 15 not in stock" in order.hold_reason
    assert level(stocked, warehouse) == (12, 12, 0)
    inventory.receive(stocked, bin_of(warehouse), 10)
    orders.release_hold(order)
    db.session.commit()
    assert order.status == "open" and order.hold_reason is None
    assert level(stocked, warehouse) == (22, 15, 7)


def test_unknown_sku_is_refused_for_manual_orders(warehouse, stocked):
    with pytest.raises(ServiceError) as error:
        new_order(("CAB-2021", 1), ("NOPE", 1))
    assert error.value.code == "unknown_product" and error.value.field == "lines[1].sku"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert level(stocked, warehouse) == (12, 0, 12)


def test_unknown_sku_from_a_store_holds_the_order_until_the_product_exists(warehouse, stocked):
    order = new_order(("CAB-2021", 1), ("NEW-SKU", 2), unknown_sku="hold", source="shopify", store_id=1,
                      remote_id="gid://shopify/Order/1")
    db.session.commit()
    assert order.status == "on_hold" and "Unknown SKU NEW-SKU" in order.hold_reason
    new = ProductFactory(sku="NEW-SKU")
    inventory.receive(new, bin_of(warehouse), 5)
    orders.release_hold(order)
    db.session.commit()
    assert order.status == "open" and order.lines[1].product_id == new.id
    assert level(new, warehouse) == (5, 2, 3)


def test_same_store_order_is_created_once(warehouse, stocked):
    first = new_order(("CAB-2021", 1), store_id=7, remote_id="1001")
    db.session.commit()
    again = new_order(("CAB-2021", 1), store_id=7, remote_id="1001")
    db.session.commit()
    assert again.id == first.id
    assert level(stocked, warehouse) == (12, 1, 11)


def test_pick_pack_ship_flow(warehouse, stocked):
    order = new_order(("CAB-2021", 2), details={"customer_name": "Avery", "ship_state": "CA"})
    db.session.commit()
    line = order.lines[0]
    orders.pick(line, bin_of(warehouse, "A-01"), 2)
    db.session.commit()
    assert order.status == "picking" and line.quantity_picked == 2
    assert level(stocked, warehouse) == (12, 2, 10)   # picked units are still here, still committed
    orders.pack(order)
    shipment = orders.ship(order, carrier="UPS", tracking_number="1Z999", tracking_url="https://ups.test/1Z999")
    db.session.commit()
    assert order.status == "shipped" and line.quantity_shipped == 2
    assert level(stocked, warehouse) == (10, 0, 10)
    assert shipment.status == "shipped" and shipment.lines[0].quantity == 2
    assert rebuild.compare() == []
    message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "shipment.status_changed")).one()
    assert message.payload == {"shipment_id": shipment.id, "old": None, "new": "shipped"}


def test_pick_rules(warehouse, stocked):
    other = WarehouseFactory(code="OTHER")
    order = new_order(("CAB-2021", 2))
    db.session.commit()
    line = order.lines[0]
    with pytest.raises(ServiceError) as error:
        orders.pick(line, bin_of(warehouse), 3)
    assert error.value.code == "over_pick"
    with pytest.raises(ServiceError) as error:
        orders.pick(line, bin_of(other), 1)
    assert error.value.code == "wrong_location"
    with pytest.raises(ServiceError) as error:
        orders.pick(line, bin_of(warehouse, "A-02"), 1)   # reserved, but that bin is empty
    assert error.value.code == "insufficient_stock"
    db.session.rollback()
    with pytest.raises(ServiceError) as error:
        orders.pack(order)
    assert error.value.code == "not_picked"
    with pytest.raises(ServiceError) as error:
        orders.ship(order, carrier="UPS")
    assert error.value.code == "not_packed"


def test_repeated_pick_key_picks_once(warehouse, stocked):
    order = new_order(("CAB-2021", 2))
    db.session.commit()
    orders.pick(order.lines[0], bin_of(warehouse), 1, idempotency_key="form:abc")
    db.session.commit()
    orders.pick(order.lines[0], bin_of(warehouse), 1, idempotency_key="form:abc")
    db.session.commit()
    assert order.lines[0].quantity_picked == 1


def test_auto_pick_ship_for_partners(warehouse, stocked):
    inventory.receive(stocked, bin_of(warehouse, "A-02"), 1)
    order = new_order(("CAB-2021", 13))
    db.session.commit()
    orders.ship(order, carrier="FedEx", tracking_number="F1", auto_pick=True, source="winedirect")
    db.session.commit()
    assert order.status == "shipped"
    assert level(stocked, warehouse) == (0, 0, 0)
    assert rebuild.compare() == []


def test_cancel_releases_and_cannot_follow_shipping(warehouse, stocked):
    order = new_order(("CAB-2021", 4))
    db.session.commit()
    orders.cancel(order, "customer changed their mind")
    db.session.commit()
    assert order.status == "cancelled" and level(stocked, warehouse) == (12, 0, 12)
    shipped = new_order(("CAB-2021", 1))
    orders.ship(shipped, carrier="UPS", auto_pick=True)
    db.session.commit()
    with pytest.raises(ServiceError) as error:
        orders.cancel(shipped)
    assert error.value.code == "order_closed"


def test_route_moves_the_reservation(warehouse, stocked):
    other = WarehouseFactory(code="TASTING")
    inventory.receive(stocked, bin_of(other), 5)
    order = new_order(("CAB-2021", 3))
    db.session.commit()
    process = other.shipping_processes[0]
    orders.route(order, other, process)
    db.session.commit()
    assert level(stocked, warehouse) == (12, 0, 12)
    assert level(stocked, other) == (5, 3, 2)
    assert order.shipping_process_id == process.id


def test_shipment_status_changes_are_announced(warehouse, stocked):
    order = new_order(("CAB-2021", 1))
    shipment = orders.ship(order, carrier="UPS", tracking_number="1Z", auto_pick=True)
    db.session.commit()
    orders.set_shipment_status(shipment, "delivered")
    db.session.commit()
    assert db.session.get(Shipment, shipment.id).delivered_at is not None
    payloads = [m.payload for m in db.session.scalars(select(OutboxMessage)
                                                      .where(OutboxMessage.topic == "shipment.status_changed"))]
    assert payloads[-1] == {"shipment_id": shipment.id, "old": "shipped", "new": "delivered"}
    with pytest.raises(ServiceError):
        orders.set_shipment_status(shipment, "teleported")


def test_adjustment_cannot_take_committed_units(warehouse, stocked):
    new_order(("CAB-2021", 10))
    db.session.commit()
    with pytest.raises(ServiceError) as error:
        inventory.adjust(stocked, bin_of(warehouse), -3, "breakage")
    assert "10 committed" in error.value.message
    db.session.rollback()
    assert level(stocked, warehouse) == (12, 10, 2)
