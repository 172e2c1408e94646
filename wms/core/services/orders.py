"""Orders: intake, routing, reservations, pick, pack, ship, cancel, and shipment status.

An order is routed to one warehouse and one shipping process. Creating it reserves stock there
(committed rises, available falls). Units the warehouse cannot cover leave the order on hold with
the shortfall named; an order is never dropped. Picking moves reserved units from a bin to the
warehouse's outbound location; shipping moves them to the customer and consumes the reservation.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select

from wms import outbox
from wms.extensions import db

from ..errors import NotFound, ServiceError
from ..models import (
    Location, LocationLevel, LocationUsage, Order, OrderLine, Product, Reservation, Shipment, ShipmentLine,
    ShippingProcess, Warehouse,
)
from ..models._base import utcnow
from ..models.orders import SHIPMENT_STATUSES
from . import inventory, levels
from .inventory import Move, check_quantity

ORDER_FIELDS = (
    "customer_name", "customer_email", "customer_phone", "customer_birth_date", "ship_name",
    "ship_address1", "ship_address2", "ship_city", "ship_state", "ship_postal_code", "ship_country",
    "shipping_method", "requested_ship_date", "is_club", "is_pickup", "channel", "financial_status", "note",
)


@dataclass
class LineInput:
    sku: str
    quantity: int
    unit_price: Decimal | str | int | None = None
    name: str = ""
    remote_line_id: str | None = None


@dataclass
class OrderInput:
    lines: list
    number: str | None = None
    source: str = "manual"
    store_id: int | None = None
    remote_id: str | None = None
    warehouse: Warehouse | None = None
    shipping_process: ShippingProcess | None = None
    idempotency_key: str | None = None
    unknown_sku: str = "error"          # "error" refuses the order; "hold" keeps it on hold
    details: dict = field(default_factory=dict)


def _price(value, index):
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ServiceError("invalid_price", f"Line {index + 1}: price {value!r} is not a number.",
                           field=f"lines[{index}].unit_price")
    if price < 0 or not price.is_finite():
        raise ServiceError("invalid_price", f"Line {index + 1}: price must be 0 or more.",
                           field=f"lines[{index}].unit_price")
    return price.quantize(Decimal("0.01"))


def default_route():
    """The first active in-house warehouse and its first in-house shipping process."""
    warehouse = db.session.scalar(select(Warehouse).where(Warehouse.is_active, Warehouse.is_external.is_(False))
                                  .order_by(Warehouse.id))
    if warehouse is None:
        raise ServiceError("no_warehouse", "Create a warehouse before taking orders.", field="warehouse")
    process = next((p for p in warehouse.shipping_processes if p.is_active and p.is_in_house), None)
    return warehouse, process


def create_order(data, user=None):
    """Create (or, for a repeated store id / idempotency key, return) an order and reserve its stock."""
    existing = _existing_order(data)
    if existing is not None:
        return existing
    if not data.lines:
        raise ServiceError("no_lines", "An order needs at least one line.", field="lines")
    if data.unknown_sku not in ("error", "hold"):
        raise ValueError("unknown_sku must be 'error' or 'hold'")
    warehouse, process = data.warehouse, data.shipping_process
    if warehouse is None:
        warehouse, default_process = default_route()
        process = process or default_process
    elif process is None:
        process = next((p for p in warehouse.shipping_processes if p.is_active), None)
    if process is not None and process.warehouse_id != warehouse.id:
        raise ServiceError("bad_route", "The shipping process belongs to another warehouse.",
                           field="shipping_process")
    order = Order(number=data.number or "", source=data.source, store_id=data.store_id,
                  remote_id=data.remote_id, warehouse=warehouse, shipping_process=process,
                  idempotency_key=data.idempotency_key)
    _apply_details(order, data.details)
    unknown = []
    for index, line in enumerate(data.lines):
        quantity = check_quantity(line.quantity, field=f"lines[{index}].quantity")
        sku = (line.sku or "").strip()
        product = db.session.scalar(select(Product).where(Product.sku == sku)) if sku else None
        if product is None:
            if data.unknown_sku == "error":
                raise NotFound("unknown_product", f"Line {index + 1}: unknown SKU {sku!r}.",
                               field=f"lines[{index}].sku")
            unknown.append(sku or "(no SKU)")
        price = _price(line.unit_price, index)
        order.lines.append(OrderLine(
            product=product, sku=sku, name=line.name or (product.name if product else ""), quantity=quantity,
            unit_price=price if price is not None else (product.retail_price if product else 0),
            remote_line_id=line.remote_line_id))
    db.session.add(order)
    db.session.flush()
    if not order.number:
        order.number = f"WMS-{order.id:05d}"
    _reserve(order)
    _set_hold(order, unknown)
    outbox.emit("order.created", {"order_id": order.id})
    if process is not None:
        outbox.emit("order.routed", {"order_id": order.id, "shipping_process_id": process.id})
    return order


def _existing_order(data):
    if data.store_id is not None and data.remote_id:
        found = db.session.scalar(select(Order).where(Order.store_id == data.store_id,
                                                      Order.remote_id == str(data.remote_id)))
        if found is not None:
            return found
    if data.idempotency_key:
        return db.session.scalar(select(Order).where(Order.idempotency_key == data.idempotency_key))
    return None


def _apply_details(order, details):
    for key, value in (details or {}).items():
        if key not in ORDER_FIELDS:
            raise ServiceError("unknown_field", f"Unknown order field {key!r}.", field=key)
        if key in ("customer_birth_date", "requested_ship_date") and isinstance(value, str) and value:
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise ServiceError("invalid_date", f"{key} must be a date like 2026-12-24.", field=key)
        if key in ("is_club", "is_pickup"):
            value = bool(value)
        if value is None and key not in ("customer_birth_date", "requested_ship_date"):
            continue
        setattr(order, key, value)


def _line_needs(line):
    """Units still to reserve for a line: not yet shipped and not yet reserved."""
    return line.quantity - line.quantity_shipped - line.quantity_reserved


def _reserve(order):
    """Reserve what the warehouse can cover for every line; returns the lines left short."""
    lines = [line for line in order.lines if line.product_id is not None and _line_needs(line) > 0]
    if not lines:
        return []
    probe = levels.LevelChanges()
    for line in lines:
        probe.commit(line.product_id, order.warehouse_id, 0)
    warehouse_rows, _ = levels.lock(probe)
    allow_negative = order.warehouse.allow_negative
    free = {key: on_hand - committed for key, (on_hand, committed) in warehouse_rows.items()}
    changes, short = levels.LevelChanges(), []
    for line in lines:
        key = (line.product_id, order.warehouse_id)
        needed = _line_needs(line)
        granted = needed if allow_negative else max(0, min(needed, free[key]))
        free[key] -= granted
        if granted:
            changes.commit(line.product_id, order.warehouse_id, granted)
            line.reservations.append(Reservation(product_id=line.product_id, warehouse_id=order.warehouse_id,
                                                 quantity=granted, status="active"))
        if granted < needed:
            short.append((line, needed - granted))
    if changes.warehouse_keys:
        levels.apply(changes, lambda w: True, inventory._describe)
        outbox.emit("stock.changed", {"product_ids": changes.product_ids, "warehouse_ids": changes.warehouse_ids})
    return short


def _release(order):
    changes = levels.LevelChanges()
    active = [r for line in order.lines for r in line.reservations if r.status == "active"]
    for reservation in active:
        changes.commit(reservation.product_id, reservation.warehouse_id, -reservation.quantity)
    if not active:
        return
    levels.apply(changes, lambda w: True, inventory._describe)
    for reservation in active:
        reservation.status = "released"
    outbox.emit("stock.changed", {"product_ids": changes.product_ids, "warehouse_ids": changes.warehouse_ids})


def _set_hold(order, unknown_skus=()):
    reasons = []
    if unknown_skus:
        reasons.append("Unknown SKU " + ", ".join(sorted(set(unknown_skus))) +
                       ": create or map the product, then release the hold.")
    for line in order.lines:
        if line.product_id is None:
            continue
        missing = _line_needs(line)
        if missing > 0:
            reasons.append(f"{line.sku}: {missing} of {line.quantity} not in stock at {order.warehouse.code}.")
    if reasons:
        order.status, order.hold_reason = "on_hold", " ".join(reasons)
    elif order.status == "on_hold":
        order.status, order.hold_reason = "open", None


def release_hold(order, user=None):
    """Try again: match unknown SKUs against products created since, and reserve what is missing."""
    _require_open(order)
    unknown = []
    for line in order.lines:
        if line.product_id is None:
            product = db.session.scalar(select(Product).where(Product.sku == line.sku)) if line.sku else None
            if product is None:
                unknown.append(line.sku or "(no SKU)")
            else:
                line.product = product
                db.session.flush()
    _reserve(order)
    _set_hold(order, unknown)
    return order


def route(order, warehouse, shipping_process, user=None):
    """Send an unshipped, unpicked order to another warehouse and/or shipping process."""
    _require_open(order)
    if any(line.quantity_picked for line in order.lines):
        raise ServiceError("already_picked", "Units of this order are already picked; ship or cancel it.")
    if shipping_process is not None and shipping_process.warehouse_id != warehouse.id:
        raise ServiceError("bad_route", "The shipping process belongs to another warehouse.",
                           field="shipping_process")
    if warehouse.id != order.warehouse_id:
        _release(order)
        order.warehouse = warehouse
        db.session.flush()
        _reserve(order)
    order.shipping_process = shipping_process
    _set_hold(order, [l.sku for l in order.lines if l.product_id is None])
    if shipping_process is not None:
        outbox.emit("order.routed", {"order_id": order.id, "shipping_process_id": shipping_process.id})
    return order


def _locked(order):
    """The order re-read under a row lock (on PostgreSQL), so two people packing, shipping or cancelling
    it at once take turns and the second sees what the first did."""
    if order is not None:
        db.session.flush()
        db.session.refresh(order, with_for_update=True)
    return order


def _require_open(order):
    if order is None:
        raise NotFound("unknown_order", "Unknown order.")
    if order.is_closed:
        raise ServiceError("order_closed", f"Order {order.number} is {order.status}.")


def outbound_location(warehouse):
    loc = warehouse.location(LocationUsage.OUTBOUND)
    if loc is None:
        loc = Location(warehouse=warehouse, code="OUTBOUND", name="Outbound / packing",
                       usage=LocationUsage.OUTBOUND.value)
        db.session.add(loc)
        db.session.flush()
    return loc


def pick(line, location, quantity, *, user=None, idempotency_key=None):
    """Take reserved units of an order line from a bin to the warehouse's outbound location."""
    if line is None:
        raise NotFound("unknown_line", "Unknown order line.", field="line")
    order = line.order
    _require_open(order)
    quantity = check_quantity(quantity)
    if location is None:
        raise NotFound("unknown_location", "Unknown location.", field="location")
    if location.warehouse_id != order.warehouse_id or location.usage != LocationUsage.INTERNAL.value:
        raise ServiceError("wrong_location", f"{location.label} is not a bin of warehouse "
                           f"{order.warehouse.code}.", field="location")
    if idempotency_key and _existing_movement(idempotency_key):
        return _existing_movement(idempotency_key)
    pickable = line.quantity_reserved - (line.quantity_picked - line.quantity_shipped)
    if quantity > pickable:
        raise ServiceError("over_pick", f"Only {max(pickable, 0)} reserved unit(s) of {line.sku} left to pick.",
                           field="quantity")
    movement = inventory.post([Move(line.product, location, outbound_location(order.warehouse), quantity, "pick",
                                    reference=f"order:{order.number}", order_line_id=line.id,
                                    idempotency_key=idempotency_key)], user)[0]
    line.quantity_picked += quantity
    if order.status == "open":
        order.status = "picking"
    return movement


def _existing_movement(key):
    from ..models import StockMovement
    return db.session.scalar(select(StockMovement).where(StockMovement.idempotency_key == key))


def pack(order, user=None):
    _require_open(_locked(order))
    unpicked = [f"{l.sku}: {l.quantity_picked} of {l.quantity} picked" for l in order.lines
                if l.quantity_picked < l.quantity]
    if unpicked:
        raise ServiceError("not_picked", "Pick every line before packing. " + "; ".join(unpicked) + ".")
    order.status = "packed"
    return order


def ship(order, *, carrier, tracking_number="", tracking_url="", service="", user=None,
         source="wms", remote_reference=None, auto_pick=False, status="shipped"):
    """Ship every picked, unshipped unit (picking first from bins when `auto_pick`, as partners do)."""
    _require_open(_locked(order))
    if not (carrier or "").strip():
        raise ServiceError("carrier_required", "Enter the carrier.", field="carrier")
    if status not in SHIPMENT_STATUSES:
        raise ServiceError("invalid_status", f"Unknown shipment status {status!r}.", field="status")
    if order.status == "on_hold":
        raise ServiceError("on_hold", f"Order is on hold: {order.hold_reason}")
    if auto_pick:
        _pick_remaining(order, user)
    elif order.status != "packed":
        raise ServiceError("not_packed", "Pack the order before shipping it.")
    lines = [l for l in order.lines if l.quantity_to_ship > 0]
    if not lines:
        raise ServiceError("nothing_to_ship", "Nothing is picked and waiting to ship.")
    outbound = outbound_location(order.warehouse)
    customer = inventory.virtual_location("customer")
    shipment = Shipment(order=order, warehouse_id=order.warehouse_id, carrier=carrier.strip(), service=service,
                        tracking_number=(tracking_number or "").strip(), tracking_url=(tracking_url or "").strip(),
                        source=source, remote_reference=remote_reference, status=status)
    db.session.add(shipment)
    db.session.flush()
    moves = [Move(l.product, outbound, customer, l.quantity_to_ship, "ship", reference=f"order:{order.number}",
                  order_line_id=l.id, idempotency_key=f"ship:{shipment.id}:{l.id}") for l in lines]
    inventory.post(moves, user, commitments=_consume(lines))
    for line in lines:
        shipment.lines.append(ShipmentLine(order_line_id=line.id, quantity=line.quantity_to_ship))
        line.quantity_shipped = line.quantity_picked
    if all(l.quantity_shipped == l.quantity for l in order.lines):
        order.status = "shipped"
    db.session.flush()
    outbox.emit("shipment.status_changed", {"shipment_id": shipment.id, "old": None, "new": status})
    return shipment


def _pick_remaining(order, user):
    for line in order.lines:
        remaining = min(line.quantity_to_pick, line.quantity_reserved - line.quantity_to_ship)
        bins = db.session.execute(
            select(Location, LocationLevel.on_hand)
            .join(LocationLevel, LocationLevel.location_id == Location.id)
            .where(LocationLevel.product_id == line.product_id,
                   Location.warehouse_id == order.warehouse_id,
                   Location.usage == LocationUsage.INTERNAL.value, LocationLevel.on_hand > 0)
            .order_by(LocationLevel.on_hand.desc(), Location.id)).all()
        for location, on_hand in bins:
            if remaining <= 0:
                break
            take = min(on_hand, remaining)
            pick(line, location, take, user=user)
            remaining -= take
        if remaining > 0:
            raise ServiceError("insufficient_stock", f"{line.sku}: {remaining} unit(s) are not in any bin of "
                               f"{order.warehouse.code}.", field="quantity")


def _consume(lines):
    """Use up the reservations of the units about to ship; returns the committed-stock deltas."""
    deltas = []
    for line in lines:
        to_consume = line.quantity_to_ship
        for reservation in line.reservations:
            if reservation.status != "active" or to_consume <= 0:
                continue
            used = min(reservation.quantity, to_consume)
            reservation.quantity -= used
            to_consume -= used
            deltas.append((reservation.product_id, reservation.warehouse_id, -used))
            if reservation.quantity == 0:
                reservation.status = "consumed"
    return deltas


def cancel(order, reason="", user=None):
    """Cancel an unshipped order and release its reservations. Picked units stay at outbound."""
    _require_open(_locked(order))
    if any(l.quantity_shipped for l in order.lines):
        raise ServiceError("partly_shipped", "Part of this order has shipped; it cannot be cancelled.")
    _release(order)
    order.status = "cancelled"
    order.hold_reason = (reason or "").strip() or None
    outbox.emit("order.cancelled", {"order_id": order.id})
    return order


def set_shipment_status(shipment, status, *, delivered_at=None, user=None):
    """Record a carrier status (in transit, delivered, ...) and tell the plugins after commit."""
    if status not in SHIPMENT_STATUSES:
        raise ServiceError("invalid_status", f"Unknown shipment status {status!r}.", field="status")
    old = shipment.status
    if old == status:
        return shipment
    shipment.status = status
    if status == "delivered":
        shipment.delivered_at = delivered_at or utcnow()
    outbox.emit("shipment.status_changed", {"shipment_id": shipment.id, "old": old, "new": status})
    return shipment
