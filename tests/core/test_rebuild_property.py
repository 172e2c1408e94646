"""Whatever sequence of operations runs, the level cache equals what the ledger says."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ProductFactory, WarehouseFactory
from wms.core.errors import ServiceError
from wms.core.services import inventory, orders, rebuild
from wms.extensions import db

OPERATIONS = ("receive", "adjust", "transfer", "return", "order", "pick", "ship", "cancel", "reverse")


def build_world():
    warehouses = [WarehouseFactory(code="P1", bins=("A", "B", "C")), WarehouseFactory(code="P2", bins=("A", "B"))]
    products = [ProductFactory() for _ in range(8)]
    db.session.commit()
    bins = [loc for wh in warehouses for loc in wh.locations if loc.usage == "internal"]
    return products, bins


def run_operation(rng, kind, products, bins, state):
    product, location = rng.choice(products), rng.choice(bins)
    quantity = rng.randint(1, 20)
    if kind == "receive":
        state["movements"].append(inventory.receive(product, location, quantity))
    elif kind == "adjust":
        state["movements"].append(inventory.adjust(product, location, rng.choice([-1, 1]) * quantity, "count"))
    elif kind == "transfer":
        state["movements"].append(inventory.transfer(product, location, rng.choice(bins), quantity))
    elif kind == "return":
        state["movements"].append(inventory.receive_return(product, location, quantity))
    elif kind == "order":
        state["orders"].append(orders.create_order(orders.OrderInput(
            lines=[orders.LineInput(sku=product.sku, quantity=quantity)],
            warehouse=location.warehouse, shipping_process=location.warehouse.shipping_processes[0])))
    elif kind == "pick" and state["orders"]:
        order = rng.choice(state["orders"])
        line = order.lines[0]
        orders.pick(line, rng.choice([b for b in bins if b.warehouse_id == order.warehouse_id]),
                    max(1, min(quantity, line.quantity_to_pick)))
    elif kind == "ship" and state["orders"]:
        orders.ship(rng.choice(state["orders"]), carrier="UPS", auto_pick=True)
    elif kind == "cancel" and state["orders"]:
        orders.cancel(rng.choice(state["orders"]))
    elif kind == "reverse" and state["movements"]:
        inventory.reverse(rng.choice(state["movements"]), reason="correction")


def run_random_operations(seed, count):
    rng = random.Random(seed)
    products, bins = build_world()
    state = {"movements": [], "orders": []}
    posted = 0
    for _ in range(count):
        try:
            run_operation(rng, rng.choice(OPERATIONS), products, bins, state)
            db.session.commit()
            posted += 1
        except ServiceError:
            db.session.rollback()
    return posted


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_cache_matches_ledger_after_any_sequence(app, seed):
    db.session.remove()
    db.drop_all()
    db.create_all()
    run_random_operations(seed, 60)
    assert rebuild.compare() == []


def test_cache_matches_ledger_after_ten_thousand_movements(app):
    from sqlalchemy import func, select

    from wms.core.models import StockMovement

    rng = random.Random(20261201)
    products, bins = build_world()
    supplier = inventory.virtual_location("supplier")
    adjustment = inventory.virtual_location("adjustment")
    while db.session.scalar(select(func.count()).select_from(StockMovement)) < 10_000:
        batch = []
        for _ in range(50):
            product, location = rng.choice(products), rng.choice(bins)
            kind = rng.choice(("receipt", "adjustment", "transfer"))
            if kind == "receipt":
                batch.append(inventory.Move(product, supplier, location, rng.randint(1, 30), "receipt"))
            elif kind == "adjustment":
                batch.append(inventory.Move(product, location, adjustment, rng.randint(1, 5), "adjustment",
                                            reason="count"))
            else:
                batch.append(inventory.Move(product, location, rng.choice([b for b in bins if b != location]),
                                            rng.randint(1, 5), "transfer"))
        for move in batch:
            try:
                inventory.post([move])
                db.session.commit()
            except ServiceError:
                db.session.rollback()
    assert rebuild.compare() == []
