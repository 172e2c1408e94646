"""Stock movements: the only way stock changes.

Each function validates its input, locks the affected level rows (see `levels.py`), appends to the
ledger, updates the level cache and writes a ``stock.changed`` outbox message, all in the caller's
transaction. Callers commit. A movement with an idempotency key that was already posted is not posted
again: the earlier movement is returned instead.
"""

from dataclasses import dataclass

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import make_transient_to_detached

from wms import outbox
from wms.extensions import db

from ..errors import NotFound, ServiceError
from ..models import Location, LocationUsage, Product, StockMovement, Warehouse
from ..models._base import utcnow
from ..models.stock import MOVEMENT_KINDS
from . import levels

MAX_QUANTITY = 1_000_000


@dataclass
class Move:
    product: Product
    from_location: Location
    to_location: Location
    quantity: int
    kind: str
    reason: str | None = None
    note: str | None = None
    reference: str | None = None
    order_line_id: int | None = None
    idempotency_key: str | None = None
    reverses_id: int | None = None


def check_quantity(quantity, field="quantity"):
    """Quantities are whole, positive numbers of bottles."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        if isinstance(quantity, str) and quantity.strip().isdigit():
            quantity = int(quantity.strip())
        else:
            raise ServiceError("invalid_quantity", "Quantity must be a whole number of units.", field=field)
    if quantity <= 0:
        raise ServiceError("invalid_quantity", "Quantity must be at least 1.", field=field)
    if quantity > MAX_QUANTITY:
        raise ServiceError("invalid_quantity", f"Quantity must be at most {MAX_QUANTITY:,}.", field=field)
    return quantity


def _check_move(move):
    move.quantity = check_quantity(move.quantity)
    if move.kind not in MOVEMENT_KINDS:
        raise ServiceError("invalid_kind", f"Unknown movement kind {move.kind!r}.", field="kind")
    if move.product is None:
        raise NotFound("unknown_product", "Unknown product.", field="product")
    if move.from_location is None or move.to_location is None:
        raise NotFound("unknown_location", "Unknown location.", field="location")
    if move.from_location.id == move.to_location.id:
        raise ServiceError("same_location", "From and to locations must differ.", field="to_location")
    if not (move.from_location.is_tracked or move.to_location.is_tracked):
        raise ServiceError("untracked_move", "A movement must start or end in a warehouse location.",
                           field="location")
    if move.kind == "adjustment" and not (move.reason or "").strip():
        raise ServiceError("reason_required", "An adjustment needs a reason.", field="reason")
    for loc in (move.from_location, move.to_location):
        if loc.is_tracked and not loc.is_active:
            raise ServiceError("inactive_location", f"Location {loc.label} is inactive.", field="location")


def post(moves, user=None, commitments=()):
    """Post movements atomically. Returns one StockMovement per Move, in order (existing ones for
    repeated idempotency keys). Raises ServiceError and writes nothing on any invalid move.

    `commitments` are (product_id, warehouse_id, delta) changes to committed stock checked and applied
    together with the moves (shipping consumes reservations as the units leave)."""
    moves = list(moves)
    if not moves:
        return []
    for move in moves:
        _check_move(move)
    keys = [m.idempotency_key for m in moves if m.idempotency_key]
    if keys:
        # Lock before looking the keys up, so two concurrent postings of one key serialise.
        levels.lock(_changes_for(moves, commitments))
    existing = _existing_by_key(keys)
    fresh = [m for m in moves if m.idempotency_key not in existing]
    rows = []
    if fresh:
        changes = _changes_for(fresh, commitments)
        levels.apply(changes, _negative_allowed, _describe)
        rows = _insert_movements(fresh, user)
        outbox.emit("stock.changed", {"product_ids": changes.product_ids,
                                      "warehouse_ids": changes.warehouse_ids})
    by_move = {id(m): row for m, row in zip(fresh, rows)}
    return [existing[m.idempotency_key] if m.idempotency_key in existing else by_move[id(m)] for m in moves]


_INSERT_MOVEMENT = text(
    "INSERT INTO stock_movement (created_at, kind, product_id, from_location_id, to_location_id, quantity, "
    "reason, note, reference, order_line_id, user_id, idempotency_key, reverses_id) VALUES (:created_at, "
    ":kind, :product_id, :from_location_id, :to_location_id, :quantity, :reason, :note, :reference, "
    ":order_line_id, :user_id, :idempotency_key, :reverses_id) RETURNING id")


def _insert_movements(moves, user):
    """Insert ledger rows with a fixed statement (this is the hot path) and hand back ORM objects."""
    rows = []
    for m in moves:
        values = {
            "created_at": utcnow(), "kind": m.kind, "product_id": m.product.id,
            "from_location_id": m.from_location.id, "to_location_id": m.to_location.id,
            "quantity": m.quantity, "reason": m.reason or None, "note": m.note, "reference": m.reference,
            "order_line_id": m.order_line_id, "user_id": user.id if user else None,
            "idempotency_key": m.idempotency_key, "reverses_id": m.reverses_id}
        values["id"] = db.session.connection().execute(_INSERT_MOVEMENT, values).scalar_one()
        row = StockMovement(**values)
        make_transient_to_detached(row)   # it is in the database already: attach it without an INSERT
        db.session.add(row)
        rows.append(row)
    return rows


def _changes_for(moves, commitments=()):
    changes = levels.LevelChanges()
    for product_id, warehouse_id, delta in commitments:
        changes.commit(product_id, warehouse_id, delta)
    for move in moves:
        if move.from_location.is_tracked:
            changes.move(move.product.id, move.from_location, -move.quantity)
        if move.to_location.is_tracked:
            changes.move(move.product.id, move.to_location, move.quantity)
    return changes


def _existing_by_key(keys):
    if not keys:
        return {}
    found = db.session.scalars(select(StockMovement).where(StockMovement.idempotency_key.in_(keys)))
    return {m.idempotency_key: m for m in found}


def _negative_allowed(warehouse_id):
    warehouse = db.session.get(Warehouse, warehouse_id)
    return bool(warehouse and warehouse.allow_negative)


def _describe(product_id, location_id=None):
    if location_id is not None:
        return db.session.get(Location, location_id).label
    return db.session.get(Product, product_id).sku


# -- virtual locations -------------------------------------------------------------------------

def virtual_location(usage):
    """The single global location of a virtual usage (supplier, customer, adjustment, partner).

    Kept in the session (every posting needs one), so it is looked up once per request or job."""
    usage = LocationUsage(usage)
    cache = db.session.info.setdefault("wms.virtual_locations", {})
    location = cache.get(usage)
    if location is not None and inspect(location).persistent:
        return location
    location = db.session.scalar(select(Location).where(Location.warehouse_id.is_(None),
                                                        Location.usage == usage.value))
    if location is None:
        location = Location(code=usage.value.upper(), name=usage.value.title(), usage=usage.value)
        db.session.add(location)
        db.session.flush()
    cache[usage] = location
    return location


def _tracked(location, field):
    if location is None:
        raise NotFound("unknown_location", "Unknown location.", field=field)
    if not location.is_tracked:
        raise ServiceError("not_a_bin", f"{location.label} is not a warehouse location.", field=field)
    return location


# -- operations --------------------------------------------------------------------------------

def receive(product, location, quantity, *, user=None, reference=None, note=None, idempotency_key=None):
    """Stock arrives from a supplier into a bin."""
    location = _tracked(location, "location")
    return post([Move(product, virtual_location("supplier"), location, quantity, "receipt",
                      reference=reference, note=note, idempotency_key=idempotency_key)], user)[0]


def adjust(product, location, delta, reason, *, user=None, note=None, reference=None, idempotency_key=None):
    """Add (delta > 0) or remove (delta < 0) units at a bin, with a reason (count, breakage, sample...)."""
    location = _tracked(location, "location")
    if isinstance(delta, str) and delta.strip().lstrip("+-").isdigit():
        delta = int(delta.strip())
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise ServiceError("invalid_quantity", "Adjustment must be a whole number other than 0 "
                           "(negative to remove units).", field="quantity")
    if not (reason or "").strip():
        raise ServiceError("reason_required", "An adjustment needs a reason.", field="reason")
    adjustment = virtual_location("adjustment")
    src, dst = (adjustment, location) if delta > 0 else (location, adjustment)
    return post([Move(product, src, dst, abs(delta), "adjustment", reason=reason.strip(), note=note,
                      reference=reference, idempotency_key=idempotency_key)], user)[0]


def transfer(product, from_location, to_location, quantity, *, user=None, note=None, reference=None,
             idempotency_key=None):
    """Move units between two bins (of one warehouse or of two)."""
    from_location = _tracked(from_location, "from_location")
    to_location = _tracked(to_location, "to_location")
    return post([Move(product, from_location, to_location, quantity, "transfer", note=note,
                      reference=reference, idempotency_key=idempotency_key)], user)[0]


def receive_return(product, location, quantity, *, user=None, reference=None, note=None, idempotency_key=None):
    """Units come back from a customer into a bin."""
    location = _tracked(location, "location")
    return post([Move(product, virtual_location("customer"), location, quantity, "return",
                      reference=reference, note=note, idempotency_key=idempotency_key)], user)[0]


def set_on_hand(product, location, target, *, reference, user=None, idempotency_key=None):
    """Bring a location's on hand to `target` with a sync movement (a partner's reported inventory).
    Returns the movement, or None when the level already matches."""
    location = _tracked(location, "location")
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise ServiceError("invalid_quantity", "Target quantity must be a whole number, 0 or more.",
                           field="quantity")
    probe = levels.LevelChanges()
    probe.move(product.id, location, 0)
    _, location_rows = levels.lock(probe)
    levels_now = location_rows[(product.id, location.id)]
    difference = target - levels_now
    if difference == 0:
        return None
    partner = virtual_location("partner")
    src, dst = (partner, location) if difference > 0 else (location, partner)
    return post([Move(product, src, dst, abs(difference), "sync", reference=reference,
                      idempotency_key=idempotency_key)], user)[0]


def reverse(movement, *, reason, user=None):
    """Post the mirror image of a movement. A movement is reversed at most once."""
    if movement is None:
        raise NotFound("unknown_movement", "Unknown movement.", field="movement")
    if movement.kind == "reversal":
        raise ServiceError("reverse_reversal", "A reversal cannot be reversed; post a new movement instead.",
                           field="movement")
    if not (reason or "").strip():
        raise ServiceError("reason_required", "A reversal needs a reason.", field="reason")
    already = db.session.scalar(select(StockMovement).where(StockMovement.reverses_id == movement.id))
    if already is not None:
        raise ServiceError("already_reversed", f"Movement {movement.id} was already reversed by "
                           f"movement {already.id}.", field="movement")
    return post([Move(movement.product, movement.to_location, movement.from_location, movement.quantity,
                      "reversal", reason=reason.strip(), reference=f"reversal of #{movement.id}",
                      reverses_id=movement.id, idempotency_key=f"reversal:{movement.id}")], user)[0]


def current_location_on_hand(product_id, location_id):
    from ..models import LocationLevel
    level = db.session.get(LocationLevel, (product_id, location_id), populate_existing=True)
    return level.on_hand if level else 0
