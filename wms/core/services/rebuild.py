"""Recompute the level cache from the ledger and the reservations, and report any disagreement."""

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from wms.extensions import db

from ..models import Location, LocationLevel, Reservation, StockMovement, WarehouseLevel
from ..models.warehouses import TRACKED_USAGES


@dataclass
class Disagreement:
    table: str
    key: tuple
    column: str
    cached: int
    ledger: int

    def __str__(self):
        return f"{self.table} {self.key} {self.column}: cache {self.cached}, ledger {self.ledger}"


def ledger_levels():
    """(location on hand, warehouse on hand, warehouse committed) as the ledger and reservations say."""
    tracked = dict(db.session.execute(select(Location.id, Location.warehouse_id)
                                      .where(Location.usage.in_(TRACKED_USAGES))).all())
    location_on_hand = defaultdict(int)
    rows = db.session.execute(select(StockMovement.product_id, StockMovement.from_location_id,
                                     StockMovement.to_location_id, func.sum(StockMovement.quantity))
                              .group_by(StockMovement.product_id, StockMovement.from_location_id,
                                        StockMovement.to_location_id))
    for product_id, src, dst, quantity in rows:
        if src in tracked:
            location_on_hand[(product_id, src)] -= quantity
        if dst in tracked:
            location_on_hand[(product_id, dst)] += quantity
    warehouse_on_hand = defaultdict(int)
    for (product_id, location_id), quantity in location_on_hand.items():
        warehouse_on_hand[(product_id, tracked[location_id])] += quantity
    committed = defaultdict(int)
    for product_id, warehouse_id, quantity in db.session.execute(
            select(Reservation.product_id, Reservation.warehouse_id, func.sum(Reservation.quantity))
            .where(Reservation.status == "active").group_by(Reservation.product_id, Reservation.warehouse_id)):
        committed[(product_id, warehouse_id)] += quantity
    return location_on_hand, warehouse_on_hand, committed, tracked


def compare():
    """Every cell where the cache and the ledger disagree (a missing row counts as 0)."""
    location_on_hand, warehouse_on_hand, committed, _ = ledger_levels()
    problems = []
    cached_locations = {(r.product_id, r.location_id): r.on_hand for r in db.session.scalars(select(LocationLevel))}
    for key in sorted(set(cached_locations) | set(location_on_hand)):
        if cached_locations.get(key, 0) != location_on_hand.get(key, 0):
            problems.append(Disagreement("location_level", key, "on_hand", cached_locations.get(key, 0),
                                         location_on_hand.get(key, 0)))
    cached_warehouses = {(r.product_id, r.warehouse_id): (r.on_hand, r.committed)
                         for r in db.session.scalars(select(WarehouseLevel))}
    for key in sorted(set(cached_warehouses) | set(warehouse_on_hand) | set(committed)):
        on_hand, held = cached_warehouses.get(key, (0, 0))
        if on_hand != warehouse_on_hand.get(key, 0):
            problems.append(Disagreement("warehouse_level", key, "on_hand", on_hand, warehouse_on_hand.get(key, 0)))
        if held != committed.get(key, 0):
            problems.append(Disagreement("warehouse_level", key, "committed", held, committed.get(key, 0)))
    return problems


def rebuild():
    """Replace the cache with what the ledger says. Returns the disagreements found before."""
    problems = compare()
    location_on_hand, warehouse_on_hand, committed, tracked = ledger_levels()
    db.session.execute(delete(LocationLevel))
    db.session.execute(delete(WarehouseLevel))
    if location_on_hand:
        db.session.execute(LocationLevel.__table__.insert(), [
            {"product_id": p, "location_id": loc, "warehouse_id": tracked[loc], "on_hand": q}
            for (p, loc), q in location_on_hand.items()])
    keys = set(warehouse_on_hand) | set(committed)
    if keys:
        db.session.execute(WarehouseLevel.__table__.insert(), [
            {"product_id": p, "warehouse_id": w, "on_hand": warehouse_on_hand.get((p, w), 0),
             "committed": committed.get((p, w), 0)} for p, w in keys])
    return problems
