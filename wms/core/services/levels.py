"""Locking and changing the level cache: the only code that writes LocationLevel and WarehouseLevel.

Rows are changed with upserts (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), one per row,
rows sorted by key: warehouse levels by (product, warehouse) first, then location levels by
(product, location). The upsert creates a missing row, locks it (a row lock on PostgreSQL; SQLite's
single write lock, taken by the transaction's first write) and returns the new values, so a posting
needs no separate read. Because every posting takes its locks in the same order, two postings never
wait on each other in a circle. A check that fails undoes its own deltas before raising, so the
session is left as it was.
"""

from dataclasses import dataclass, field

from sqlalchemy import text

from wms.extensions import db

from ..errors import InsufficientStock


@dataclass
class LevelChanges:
    """Deltas to apply under lock: on hand per location and per warehouse, committed per warehouse."""

    location_on_hand: dict = field(default_factory=dict)    # (product_id, location_id) -> delta
    location_warehouse: dict = field(default_factory=dict)  # location_id -> warehouse_id
    warehouse_on_hand: dict = field(default_factory=dict)   # (product_id, warehouse_id) -> delta
    warehouse_committed: dict = field(default_factory=dict) # (product_id, warehouse_id) -> delta

    def move(self, product_id, location, delta):
        key = (product_id, location.id)
        self.location_on_hand[key] = self.location_on_hand.get(key, 0) + delta
        self.location_warehouse[location.id] = location.warehouse_id
        wkey = (product_id, location.warehouse_id)
        self.warehouse_on_hand[wkey] = self.warehouse_on_hand.get(wkey, 0) + delta

    def commit(self, product_id, warehouse_id, delta):
        key = (product_id, warehouse_id)
        self.warehouse_committed[key] = self.warehouse_committed.get(key, 0) + delta

    def inverse(self):
        return LevelChanges({k: -v for k, v in self.location_on_hand.items()}, dict(self.location_warehouse),
                            {k: -v for k, v in self.warehouse_on_hand.items()},
                            {k: -v for k, v in self.warehouse_committed.items()})

    @property
    def warehouse_keys(self):
        return sorted(set(self.warehouse_on_hand) | set(self.warehouse_committed))

    @property
    def location_keys(self):
        return sorted(self.location_on_hand)

    @property
    def product_ids(self):
        return sorted({p for p, _ in self.warehouse_keys})

    @property
    def warehouse_ids(self):
        return sorted({w for _, w in self.warehouse_keys})


# One row per statement: a fixed statement text is prepared once, and both SQLite and PostgreSQL
# accept this exact syntax. Called in sorted key order, which is the lock order.
_UPSERT_WAREHOUSE = text(
    "INSERT INTO warehouse_level (product_id, warehouse_id, on_hand, committed) "
    "VALUES (:product_id, :warehouse_id, :on_hand, :committed) "
    "ON CONFLICT (product_id, warehouse_id) DO UPDATE SET "
    "on_hand = warehouse_level.on_hand + excluded.on_hand, "
    "committed = warehouse_level.committed + excluded.committed "
    "RETURNING on_hand, committed")
_UPSERT_LOCATION = text(
    "INSERT INTO location_level (product_id, location_id, warehouse_id, on_hand) "
    "VALUES (:product_id, :location_id, :warehouse_id, :on_hand) "
    "ON CONFLICT (product_id, location_id) DO UPDATE SET "
    "on_hand = location_level.on_hand + excluded.on_hand "
    "RETURNING on_hand")


def _upsert_warehouses(changes):
    result = {}
    for product_id, warehouse_id in changes.warehouse_keys:
        key = (product_id, warehouse_id)
        result[key] = tuple(db.session.connection().execute(_UPSERT_WAREHOUSE, {
            "product_id": product_id, "warehouse_id": warehouse_id,
            "on_hand": changes.warehouse_on_hand.get(key, 0),
            "committed": changes.warehouse_committed.get(key, 0)}).one())
    return result


def _upsert_locations(changes):
    result = {}
    for product_id, location_id in changes.location_keys:
        key = (product_id, location_id)
        result[key] = db.session.connection().execute(_UPSERT_LOCATION, {
            "product_id": product_id, "location_id": location_id,
            "warehouse_id": changes.location_warehouse[location_id],
            "on_hand": changes.location_on_hand[key]}).scalar_one()
    return result


def _write(changes):
    return _upsert_warehouses(changes), _upsert_locations(changes)


def lock(changes):
    """Create missing rows and lock every row `changes` touches, changing nothing.
    Returns ({(product, warehouse): (on_hand, committed)}, {(product, location): on_hand})."""
    zero = LevelChanges({k: 0 for k in changes.location_on_hand}, dict(changes.location_warehouse),
                        {k: 0 for k in changes.warehouse_on_hand}, {k: 0 for k in changes.warehouse_committed})
    return _write(zero)


def apply(changes, negative_allowed, describe):
    """Apply `changes` and check the result.

    `negative_allowed(warehouse_id)` says whether a warehouse may go below zero; `describe(product_id,
    location_id=None)` names things in error messages. When a location's on hand or a warehouse's
    available would drop below zero, the deltas are undone and InsufficientStock is raised.
    """
    warehouses, locations = _write(changes)
    try:
        _check(changes, warehouses, locations, negative_allowed, describe)
    except InsufficientStock:
        _write(changes.inverse())
        raise
    return warehouses, locations


def _check(changes, warehouses, locations, negative_allowed, describe):
    for key in changes.location_keys:
        delta, new = changes.location_on_hand[key], locations[key]
        if delta < 0 and new < 0 and not negative_allowed(changes.location_warehouse[key[1]]):
            raise InsufficientStock(
                "insufficient_stock", f"Only {new - delta} of {describe(key[0])} at "
                f"{describe(None, key[1])}; cannot take {-delta}.", field="quantity")
    for key in changes.warehouse_keys:
        on_hand, committed = warehouses[key]
        lowered = changes.warehouse_on_hand.get(key, 0) - changes.warehouse_committed.get(key, 0)
        if lowered < 0 and on_hand - committed < 0 and not negative_allowed(key[1]):
            old_committed = committed - changes.warehouse_committed.get(key, 0)
            old_available = on_hand - committed - lowered
            raise InsufficientStock(
                "insufficient_stock", f"Only {old_available} of {describe(key[0])} available in this "
                f"warehouse ({old_committed} committed to orders); cannot take {-lowered}.", field="quantity")
