"""Two people taking the last bottle at the same moment: exactly one wins.

Runs on SQLite (one writer at a time) and, in CI, on PostgreSQL (row locks taken in a fixed order).
Each thread has its own app context, session and database connection.
"""

import threading

from tests.factories import bin_of
from wms.core.errors import InsufficientStock
from wms.core.models import Order, Product, WarehouseLevel, Location
from wms.core.services import inventory, orders, rebuild
from wms.extensions import db


def run_concurrently(app, work, count=2):
    """Start `count` threads that call work(index) at the same instant; return their outcomes."""
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def runner(index):
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                outcomes[index] = ("ok", work(index))
                db.session.commit()
            except InsufficientStock as exc:
                db.session.rollback()
                outcomes[index] = ("refused", exc.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_two_takes_of_the_last_bottle(app, warehouse, product):
    inventory.receive(product, bin_of(warehouse), 1)
    db.session.commit()
    product_id, location_id = product.id, bin_of(warehouse).id

    def take(index):
        return inventory.adjust(db.session.get(Product, product_id), db.session.get(Location, location_id),
                                -1, f"sold at the tasting bar (till {index})").id

    outcomes = run_concurrently(app, take)
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    db.session.expire_all()
    level = db.session.get(WarehouseLevel, (product_id, warehouse.id))
    assert (level.on_hand, level.available) == (0, 0)
    assert rebuild.compare() == []


def test_two_orders_for_the_last_bottle(app, warehouse, product):
    inventory.receive(product, bin_of(warehouse), 1)
    db.session.commit()

    def order(index):
        return orders.create_order(orders.OrderInput(
            number=f"#{index}", lines=[orders.LineInput(sku="CAB-2021", quantity=1)])).id

    outcomes = run_concurrently(app, order)
    assert [o[0] for o in outcomes] == ["ok", "ok"]
    db.session.expire_all()
    statuses = sorted(db.session.get(Order, o[1]).status for o in outcomes)
    assert statuses == ["on_hold", "open"]
    level = db.session.get(WarehouseLevel, (product.id, warehouse.id))
    assert (level.on_hand, level.committed, level.available) == (1, 1, 0)


def test_two_picks_of_the_last_reserved_bottle(app, warehouse, product):
    inventory.receive(product, bin_of(warehouse, "A-01"), 1)
    inventory.receive(product, bin_of(warehouse, "A-02"), 1)
    first = orders.create_order(orders.OrderInput(lines=[orders.LineInput(sku="CAB-2021", quantity=1)]))
    second = orders.create_order(orders.OrderInput(lines=[orders.LineInput(sku="CAB-2021", quantity=1)]))
    db.session.commit()
    line_ids = [first.lines[0].id, second.lines[0].id]
    a01 = bin_of(warehouse, "A-01").id

    def pick(index):  # both pickers walk to A-01, which holds one bottle
        from wms.core.models import OrderLine
        return orders.pick(db.session.get(OrderLine, line_ids[index]), db.session.get(Location, a01), 1).id

    outcomes = run_concurrently(app, pick)
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"]
    db.session.expire_all()
    level = db.session.get(WarehouseLevel, (product.id, warehouse.id))
    assert (level.on_hand, level.committed, level.available) == (2, 2, 0)
    assert rebuild.compare() == []


def test_two_people_shipping_the_same_order_ship_it_once(app, warehouse, product):
    from wms.core.errors import ServiceError
    from wms.core.models import Shipment
    inventory.receive(product, bin_of(warehouse), 2)
    order = orders.create_order(orders.OrderInput(number="#S1", lines=[orders.LineInput(sku="CAB-2021", quantity=2)]))
    orders.pick(order.lines[0], bin_of(warehouse), 2)
    orders.pack(order)
    db.session.commit()
    order_id = order.id
    barrier = threading.Barrier(2)
    outcomes = []

    def ship():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                orders.ship(db.session.get(Order, order_id), carrier="UPS", tracking_number="1Z999")
                db.session.commit()
                outcomes.append("ok")
            except (ServiceError, InsufficientStock) as exc:
                db.session.rollback()
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ship) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 2 and outcomes.count("ok") == 1
    if db.engine.dialect.name == "postgresql":   # the row lock makes the second wait and see it shipped
        assert "order_closed" in outcomes
    db.session.expire_all()
    assert db.session.query(Shipment).filter_by(order_id=order_id).count() == 1
    assert db.session.get(Order, order_id).status == "shipped"
    level = db.session.get(WarehouseLevel, (product.id, warehouse.id))
    assert (level.on_hand, level.committed) == (0, 0)
    assert rebuild.compare() == []
