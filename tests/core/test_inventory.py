"""The ledger's rules, through the inventory service."""

import pytest
from sqlalchemy import func, select

from tests.factories import ProductFactory, WarehouseFactory, bin_of
from wms.core.errors import InsufficientStock, ServiceError
from wms.core.models import LocationLevel, OutboxMessage, StockMovement, WarehouseLevel
from wms.core.services import inventory, rebuild
from wms.extensions import db


def level(product, warehouse):
    row = db.session.get(WarehouseLevel, (product.id, warehouse.id), populate_existing=True)
    return (row.on_hand, row.committed, row.available) if row else (0, 0, 0)


def bin_level(product, location):
    row = db.session.get(LocationLevel, (product.id, location.id), populate_existing=True)
    return row.on_hand if row else 0


def movement_count():
    return db.session.scalar(select(func.count()).select_from(StockMovement))


def test_receipt_adds_to_bin_and_warehouse(warehouse, product):
    a01 = bin_of(warehouse, "A-01")
    movement = inventory.receive(product, a01, 12, reference="PO-1")
    db.session.commit()
    assert movement.kind == "receipt" and movement.quantity == 12
    assert movement.from_location.usage == "supplier"
    assert bin_level(product, a01) == 12
    assert level(product, warehouse) == (12, 0, 12)


@pytest.mark.parametrize("quantity", [0, -3, 1.5, "abc", "", None, True, 10_000_001])
def test_bad_quantities_are_refused_and_write_nothing(warehouse, product, quantity):
    with pytest.raises(ServiceError) as error:
        inventory.receive(product, bin_of(warehouse), quantity)
    db.session.rollback()
    assert error.value.code == "invalid_quantity" and error.value.field == "quantity"
    assert movement_count() == 0
    assert level(product, warehouse) == (0, 0, 0)


def test_quantity_given_as_digits_is_accepted(warehouse, product):
    inventory.receive(product, bin_of(warehouse), " 7 ")
    assert level(product, warehouse) == (7, 0, 7)


def test_unknown_product_or_location_is_refused(warehouse, product):
    with pytest.raises(ServiceError) as error:
        inventory.receive(None, bin_of(warehouse), 1)
    assert error.value.code == "unknown_product"
    with pytest.raises(ServiceError) as error:
        inventory.receive(product, None, 1)
    assert error.value.code == "unknown_location"
    db.session.rollback()
    assert movement_count() == 0


def test_virtual_location_is_not_a_bin(warehouse, product):
    with pytest.raises(ServiceError) as error:
        inventory.receive(product, inventory.virtual_location("customer"), 1)
    assert error.value.code == "not_a_bin"


def test_adjustment_requires_a_reason(warehouse, product):
    inventory.receive(product, bin_of(warehouse), 5)
    db.session.commit()
    for reason in ("", "   ", None):
        with pytest.raises(ServiceError) as error:
            inventory.adjust(product, bin_of(warehouse), -1, reason)
        assert error.value.code == "reason_required"
        db.session.rollback()
    assert movement_count() == 1
    inventory.adjust(product, bin_of(warehouse), -2, "breakage")
    db.session.commit()
    assert level(product, warehouse) == (3, 0, 3)


def test_adjustment_reason_is_enforced_by_the_database_too(warehouse, product):
    inventory.receive(product, bin_of(warehouse), 5)
    db.session.commit()
    row = StockMovement(kind="adjustment", product_id=product.id, from_location_id=bin_of(warehouse).id,
                        to_location_id=inventory.virtual_location("adjustment").id, quantity=1, reason=None)
    db.session.add(row)
    with pytest.raises(Exception):
        db.session.flush()
    db.session.rollback()


def test_available_never_goes_negative(warehouse, product):
    a01 = bin_of(warehouse, "A-01")
    inventory.receive(product, a01, 2)
    db.session.commit()
    with pytest.raises(InsufficientStock) as error:
        inventory.adjust(product, a01, -3, "count")
    assert "Only 2" in error.value.message
    db.session.rollback()
    assert level(product, warehouse) == (2, 0, 2)
    assert movement_count() == 1


def test_a_bin_cannot_give_more_than_it_holds(warehouse, product):
    a01, a02 = bin_of(warehouse, "A-01"), bin_of(warehouse, "A-02")
    inventory.receive(product, a01, 2)
    inventory.receive(product, a02, 10)
    db.session.commit()
    with pytest.raises(InsufficientStock) as error:
        inventory.transfer(product, a01, a02, 3)
    assert "A-01" in error.value.message
    db.session.rollback()
    assert (bin_level(product, a01), bin_level(product, a02)) == (2, 10)


def test_warehouse_that_allows_negative_stock(product):
    wh = WarehouseFactory(code="NEG", allow_negative=True)
    inventory.adjust(product, bin_of(wh), -4, "sold at event before receipt")
    db.session.commit()
    assert level(product, wh) == (-4, 0, -4)


def test_transfer_between_warehouses_moves_availability(warehouse, product):
    other = WarehouseFactory(code="TASTING")
    inventory.receive(product, bin_of(warehouse), 10)
    inventory.transfer(product, bin_of(warehouse), bin_of(other), 4)
    db.session.commit()
    assert level(product, warehouse) == (6, 0, 6)
    assert level(product, other) == (4, 0, 4)


def test_repeated_idempotency_key_posts_nothing(warehouse, product):
    first = inventory.receive(product, bin_of(warehouse), 6, idempotency_key="scan-123")
    db.session.commit()
    again = inventory.receive(product, bin_of(warehouse), 6, idempotency_key="scan-123")
    db.session.commit()
    assert again.id == first.id
    assert movement_count() == 1
    assert level(product, warehouse) == (6, 0, 6)


def test_reversal_restores_levels_once(warehouse, product):
    a01 = bin_of(warehouse, "A-01")
    inventory.receive(product, a01, 10)
    wrong = inventory.adjust(product, a01, -4, "breakage")
    db.session.commit()
    reversal = inventory.reverse(wrong, reason="miscount: bottles were fine")
    db.session.commit()
    assert reversal.kind == "reversal" and reversal.reverses_id == wrong.id
    assert level(product, warehouse) == (10, 0, 10)
    with pytest.raises(ServiceError) as error:
        inventory.reverse(wrong, reason="again")
    assert error.value.code == "already_reversed"
    with pytest.raises(ServiceError) as error:
        inventory.reverse(reversal, reason="undo the undo")
    assert error.value.code == "reverse_reversal"


def test_reversal_of_a_receipt_cannot_take_stock_that_is_gone(warehouse, product):
    a01 = bin_of(warehouse)
    receipt = inventory.receive(product, a01, 5)
    inventory.adjust(product, a01, -4, "sample")
    db.session.commit()
    with pytest.raises(InsufficientStock):
        inventory.reverse(receipt, reason="wrong delivery")
    db.session.rollback()
    assert level(product, warehouse) == (1, 0, 1)


def test_ledger_rows_cannot_be_edited_or_deleted(warehouse, product):
    movement = inventory.receive(product, bin_of(warehouse), 3)
    db.session.commit()
    movement.quantity = 30
    with pytest.raises(ValueError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(StockMovement, movement.id))
    with pytest.raises(ValueError, match="append-only"):
        db.session.flush()
    db.session.rollback()


def test_set_on_hand_posts_the_difference_as_sync(warehouse, product):
    a01 = bin_of(warehouse)
    inventory.receive(product, a01, 10)
    movement = inventory.set_on_hand(product, a01, 7, reference="3pl:snapshot")
    assert movement.kind == "sync" and movement.quantity == 3
    assert inventory.set_on_hand(product, a01, 7, reference="3pl:snapshot") is None
    inventory.set_on_hand(product, a01, 9, reference="3pl:snapshot")
    db.session.commit()
    assert level(product, warehouse) == (9, 0, 9)


def test_every_posting_writes_a_stock_changed_outbox_message(warehouse, product):
    inventory.receive(product, bin_of(warehouse), 3)
    db.session.commit()
    messages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "stock.changed")).all()
    assert len(messages) == 1
    assert messages[0].payload == {"product_ids": [product.id], "warehouse_ids": [warehouse.id]}


def test_batch_posting_is_all_or_nothing(warehouse, product):
    second = ProductFactory()
    a01 = bin_of(warehouse)
    supplier = inventory.virtual_location("supplier")
    adjustment = inventory.virtual_location("adjustment")
    with pytest.raises(InsufficientStock):
        inventory.post([
            inventory.Move(product, supplier, a01, 5, "receipt"),
            inventory.Move(second, a01, adjustment, 1, "adjustment", reason="lost"),
        ])
    db.session.rollback()
    assert movement_count() == 0 and level(product, warehouse) == (0, 0, 0)


def test_rebuild_agrees_and_repairs_a_corrupted_cache(warehouse, product):
    inventory.receive(product, bin_of(warehouse), 8)
    db.session.commit()
    assert rebuild.compare() == []
    db.session.execute(WarehouseLevel.__table__.update().values(on_hand=99))
    db.session.commit()
    problems = rebuild.rebuild()
    db.session.commit()
    assert [(p.table, p.column, p.cached, p.ledger) for p in problems] == [("warehouse_level", "on_hand", 99, 8)]
    assert rebuild.compare() == []


def test_csv_export_does_not_write_formulas_and_imports_them_back(app):
    from wms.core.services import catalog
    ProductFactory(sku="F-1", name="=HYPERLINK(\"http://evil\")", brand="@brand")
    db.session.commit()
    text = catalog.export_products_csv()
    assert "'=HYPERLINK" in text and "'@brand" in text
    db.session.execute(StockMovement.__table__.delete())
    from wms.core.models import Product
    db.session.execute(Product.__table__.delete())
    db.session.commit()
    assert catalog.import_products_csv(text) == (1, 0)
    product = db.session.scalar(select(Product))
    assert product.name == "=HYPERLINK(\"http://evil\")" and product.brand == "@brand"
