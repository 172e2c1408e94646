"""Operator order pages: the list, a manual order, and the order page with pick, pack, ship, cancel,
release hold, route and shipment status.

Each action is a POST that calls the orders service, commits and redirects back to the order page with
a flash. A refused action shows the order page again with the message next to the field (or at the top
of the action's form) and changes nothing.
"""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from wms.core.errors import ServiceError
from wms.core.models import Location, LocationLevel, LocationUsage, Order, Shipment, ShippingProcess, Warehouse
from wms.core.models.orders import ORDER_STATUSES, SHIPMENT_STATUSES
from wms.core.services import orders as order_service
from wms.extensions import db

from .dashboard import current_app_panels
from .forms import int_or_none
from .stock import (
    form_key, idempotency_key, paginate, parse_day, scanned_location, scoped_errors, text_input, warehouse_options,
)

bp = Blueprint("orders", __name__, url_prefix="/orders")

NEW_LINE_ROWS = 5
MAX_LINE_ROWS = 100
# Order fields on the new-order form, with their labels (for messages) and column limits.
DETAIL_FIELDS = {
    "customer_name": ("Customer name", 200), "customer_email": ("Customer email", 255),
    "customer_phone": ("Customer phone", 50), "ship_name": ("Ship to name", 200),
    "ship_address1": ("Address", 255), "ship_address2": ("Address line 2", 255), "ship_city": ("City", 120),
    "ship_state": ("State", 10), "ship_postal_code": ("Postal code", 20), "ship_country": ("Country", 2),
    "shipping_method": ("Shipping method", 120), "note": ("Note", 1000),
}
ROUTE_ALIASES = {"warehouse": "warehouse_id", "shipping_process": "shipping_process_id"}
NEW_ORDER_FIELDS = (*DETAIL_FIELDS, "requested_ship_date", "customer_birth_date", "warehouse_id",
                    "shipping_process_id")
ACTION_FIELDS = {
    "pick": ("location", "quantity"),
    "pack": (),
    "ship": ("carrier", "service", "tracking_number", "tracking_url"),
    "cancel": ("reason",),
    "release_hold": (),
    "route": ("warehouse_id", "shipping_process_id"),
    "shipment_status": ("status",),
}


# -- list ----------------------------------------------------------------------------------------

@bp.route("/")
def index():
    args = request.args
    query = (select(Order).order_by(Order.placed_at.desc(), Order.id.desc())
             .options(selectinload(Order.lines), selectinload(Order.warehouse)))
    if args.get("status") in ORDER_STATUSES:
        query = query.where(Order.status == args["status"])
    elif args.get("status") == "active":
        query = query.where(Order.status.in_(("open", "on_hold", "picking", "packed")))
    search = args.get("q", "").strip().lower()
    if search:
        query = query.where(or_(*(func.lower(column).contains(search, autoescape=True) for column in
                                  (Order.number, Order.customer_name, Order.customer_email, Order.ship_name))))
    return render_template("orders/index.html", page=paginate(query), args=args, statuses=ORDER_STATUSES)


# -- new manual order ----------------------------------------------------------------------------

def process_options():
    processes = db.session.scalars(select(ShippingProcess).join(Warehouse)
                                   .where(ShippingProcess.is_active, Warehouse.is_active)
                                   .order_by(Warehouse.code, ShippingProcess.name))
    return [(p.id, f"{p.warehouse.code} · {p.name}" + ("" if p.is_in_house else f" ({p.handler})"))
            for p in processes]


def _default_route_ids():
    try:
        warehouse, process = order_service.default_route()
    except ServiceError:
        return {}
    return {"warehouse_id": warehouse.id, "shipping_process_id": process.id if process else ""}


def _line_rows(form):
    """The SKU/quantity rows as posted: [(sku, quantity), ...], at least NEW_LINE_ROWS of them."""
    skus, quantities = form.getlist("sku"), form.getlist("quantity")
    rows = [(sku.strip(), (quantities[i] if i < len(quantities) else "").strip())
            for i, sku in enumerate(skus[:MAX_LINE_ROWS])]
    return rows + [("", "")] * max(0, NEW_LINE_ROWS - len(rows))


def _order_details(form):
    details = {name: text_input(form, name, limit, label) for name, (label, limit) in DETAIL_FIELDS.items()}
    details["ship_country"] = details["ship_country"].upper() or "US"
    details["requested_ship_date"] = parse_day(form.get("requested_ship_date", "").strip(), "requested_ship_date")
    details["customer_birth_date"] = parse_day(form.get("customer_birth_date", "").strip(), "customer_birth_date")
    details["is_club"] = bool(form.get("is_club"))
    details["is_pickup"] = bool(form.get("is_pickup"))
    return details


def _route_choice(form):
    warehouse_id = int_or_none(form.get("warehouse_id"))
    warehouse = db.session.get(Warehouse, warehouse_id) if warehouse_id else None
    if warehouse is None or not warehouse.is_active:
        raise ServiceError("unknown_warehouse", "Choose a warehouse.", field="warehouse_id")
    process_id = int_or_none(form.get("shipping_process_id"))
    process = db.session.get(ShippingProcess, process_id) if process_id else None
    if process_id and process is None:
        raise ServiceError("unknown_process", "Choose a shipping process.", field="shipping_process_id")
    return warehouse, process


def _line_inputs(rows):
    """LineInputs for the filled rows, and for each the index of its row on the form."""
    lines, row_of_line = [], []
    for row, (sku, quantity) in enumerate(rows):
        if not sku and not quantity:
            continue
        if not sku:
            raise ServiceError("sku_required", "Enter the SKU.", field=f"lines[{row}].sku")
        lines.append(order_service.LineInput(sku=sku, quantity=quantity))
        row_of_line.append(row)
    if not lines:
        raise ServiceError("no_lines", "Enter at least one line: a SKU and a quantity.", field="lines[0].sku")
    return lines, row_of_line


def _errors_on_rows(exc, row_of_line):
    """Service errors name lines by their place among the filled rows ("Line 2: ..."); the form
    shows them next to the row they came from, which is name enough."""
    field = exc.field or ""
    if field.startswith("lines[") and "]" in field:
        index = int_or_none(field[6:field.index("]")])
        if index is not None and index < len(row_of_line):
            message = exc.message.removeprefix(f"Line {index + 1}: ")
            return {f"lines[{row_of_line[index]}]{field[field.index(']') + 1:]}": message[:1].upper() + message[1:]}
    field = ROUTE_ALIASES.get(field, field)
    return {field if field in NEW_ORDER_FIELDS or field.startswith("lines[") else "_form": exc.message}


def _new_order_page(form, rows, errors=None, status=200):
    return render_template("orders/new.html", form=form, rows=rows, errors=errors or {}, form_key=form_key(),
                           warehouses=warehouse_options(), processes=process_options()), status


@bp.route("/new", methods=["GET", "POST"])
def new():
    if request.method == "GET":
        return _new_order_page({"ship_country": "US", **_default_route_ids()}, [("", "")] * NEW_LINE_ROWS)
    form = request.form
    rows = _line_rows(form)
    if form.get("action") == "more_rows":
        return _new_order_page(form, rows + [("", "")] * NEW_LINE_ROWS)
    row_of_line = []  # stays empty when the rows themselves are refused: their errors name form rows
    try:
        lines, row_of_line = _line_inputs(rows)
        warehouse, process = _route_choice(form)
        order = order_service.create_order(order_service.OrderInput(
            lines=lines, source="manual", warehouse=warehouse, shipping_process=process,
            idempotency_key=idempotency_key(form), details=_order_details(form)), user=current_user)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _new_order_page(form, rows, _errors_on_rows(exc, row_of_line), status=400)
    if order.status == "on_hold":
        flash(f"Order {order.number} created, on hold: {order.hold_reason}", "warning")
    else:
        flash(f"Order {order.number} created; every line is reserved at {order.warehouse.code}.", "success")
    return redirect(url_for("orders.detail", order_id=order.id))


# -- order page ----------------------------------------------------------------------------------

def pick_bins(order):
    """{line_id: [(location, on_hand), ...]}: the bins of the order's warehouse holding each line's product."""
    product_ids = {line.product_id for line in order.lines if line.product_id and line.quantity_to_pick > 0}
    if not product_ids:
        return {}
    rows = db.session.execute(
        select(LocationLevel.product_id, Location, LocationLevel.on_hand)
        .join(Location, Location.id == LocationLevel.location_id)
        .where(LocationLevel.product_id.in_(product_ids), Location.warehouse_id == order.warehouse_id,
               Location.usage == LocationUsage.INTERNAL.value, LocationLevel.on_hand > 0)
        .order_by(LocationLevel.on_hand.desc(), Location.code)).all()
    by_product = {}
    for product_id, location, on_hand in rows:
        by_product.setdefault(product_id, []).append((location, on_hand))
    return {line.id: by_product.get(line.product_id, []) for line in order.lines}


def pick_default(line):
    """What is left to pick, limited to what is reserved and not yet picked."""
    reserved_unpicked = line.quantity_reserved - line.quantity_to_ship
    left = min(line.quantity_to_pick, reserved_unpicked) if reserved_unpicked > 0 else line.quantity_to_pick
    return max(left, 0)


def _detail_page(order, failed=None, errors=None, form=None, status=200):
    """The order page. `failed` names the refused action ('pick', line_id) or ('ship', None) ..."""
    return render_template(
        "orders/detail.html", order=order, failed=failed or (None, None), errors=errors or {}, form=form or {},
        form_key=form_key(), bins=pick_bins(order), pick_default=pick_default, warehouses=warehouse_options(),
        processes=process_options(), reservations=[r for line in order.lines for r in line.reservations],
        warehouse_codes=dict(db.session.execute(select(Warehouse.id, Warehouse.code)).all()),
        shipment_status_options=[(s, s.replace("_", " ")) for s in SHIPMENT_STATUSES],
        panels=current_app_panels("order", order)), status


@bp.route("/<int:order_id>")
def detail(order_id):
    return _detail_page(db.get_or_404(Order, order_id))


def _run(order, action, call, target=None):
    """Call the service, commit and return its result; on refusal, (None, the re-rendered order page)."""
    try:
        result = call()
        db.session.commit()
        return result, None
    except ServiceError as exc:
        db.session.rollback()
        errors = scoped_errors(exc, ACTION_FIELDS[action], ROUTE_ALIASES)
        return None, _detail_page(order, failed=(action, target), errors=errors, form=request.form, status=400)


def _back(order):
    return redirect(url_for("orders.detail", order_id=order.id))


@bp.route("/<int:order_id>/lines/<int:line_id>/pick", methods=["POST"])
def pick(order_id, line_id):
    order = db.get_or_404(Order, order_id)
    line = next((l for l in order.lines if l.id == line_id), None)
    if line is None:
        abort(404)

    def call():
        location = scanned_location(request.form, "location", warehouse=order.warehouse)
        return order_service.pick(line, location, request.form.get("quantity", "").strip(), user=current_user,
                                  idempotency_key=idempotency_key(request.form))
    movement, refused = _run(order, "pick", call, line.id)
    if refused:
        return refused
    flash(f"Picked {movement.quantity} × {line.sku} from {movement.from_location.label}: "
          f"{line.quantity_picked} of {line.quantity} picked.", "success")
    return _back(order)


@bp.route("/<int:order_id>/pack", methods=["POST"])
def pack(order_id):
    order = db.get_or_404(Order, order_id)
    _, refused = _run(order, "pack", lambda: order_service.pack(order, user=current_user))
    if refused:
        return refused
    flash(f"Order {order.number} packed; ready to ship.", "success")
    return _back(order)


@bp.route("/<int:order_id>/ship", methods=["POST"])
def ship(order_id):
    order = db.get_or_404(Order, order_id)
    # The form remembers the status it was shown for: a second click on one form finds the order
    # already shipped, and is told so rather than refused.
    if order.status == "shipped" and request.form.get("seen_status") == "packed":
        flash(f"Order {order.number} was already shipped.", "info")
        return _back(order)
    form = request.form

    def call():
        return order_service.ship(order, carrier=text_input(form, "carrier", 80, "Carrier"),
                                  service=text_input(form, "service", 80, "Service"),
                                  tracking_number=text_input(form, "tracking_number", 120, "Tracking number"),
                                  tracking_url=_tracking_url(form), user=current_user)
    shipment, refused = _run(order, "ship", call)
    if refused:
        return refused
    flash(f"Order {order.number} shipped with {shipment.carrier}"
          + (f", tracking {shipment.tracking_number}" if shipment.tracking_number else "") + ".", "success")
    return _back(order)


def _tracking_url(form):
    url = text_input(form, "tracking_url", 500, "Tracking URL")
    if url and not url.lower().startswith(("https://", "http://")):
        raise ServiceError("invalid_url", "The tracking URL must start with https://.", field="tracking_url")
    return url


@bp.route("/<int:order_id>/cancel", methods=["POST"])
def cancel(order_id):
    order = db.get_or_404(Order, order_id)
    if order.status == "cancelled" and request.form.get("seen_status") not in (None, "", "cancelled"):
        flash(f"Order {order.number} was already cancelled.", "info")
        return _back(order)
    reason = request.form.get("reason", "")
    _, refused = _run(order, "cancel", lambda: order_service.cancel(
        order, reason=text_input(request.form, "reason", 500, "Reason"), user=current_user))
    if refused:
        return refused
    flash(f"Order {order.number} cancelled; its reservations are released."
          + ("" if reason.strip() else " No reason given."), "success")
    return _back(order)


@bp.route("/<int:order_id>/release-hold", methods=["POST"])
def release_hold(order_id):
    order = db.get_or_404(Order, order_id)
    _, refused = _run(order, "release_hold", lambda: order_service.release_hold(order, user=current_user))
    if refused:
        return refused
    if order.status == "on_hold":
        flash(f"Order {order.number} is still on hold: {order.hold_reason}", "warning")
    else:
        flash(f"Hold released: order {order.number} is fully reserved at {order.warehouse.code}.", "success")
    return _back(order)


@bp.route("/<int:order_id>/route", methods=["POST"])
def route(order_id):
    order = db.get_or_404(Order, order_id)

    def call():
        warehouse, process = _route_choice(request.form)
        return order_service.route(order, warehouse, process, user=current_user)
    _, refused = _run(order, "route", call)
    if refused:
        return refused
    process = order.shipping_process.name if order.shipping_process else "no shipping process"
    flash(f"Order {order.number} routed to {order.warehouse.code}, {process}."
          + (f" On hold: {order.hold_reason}" if order.status == "on_hold" else ""),
          "warning" if order.status == "on_hold" else "success")
    return _back(order)


@bp.route("/<int:order_id>/shipments/<int:shipment_id>/status", methods=["POST"])
def shipment_status(order_id, shipment_id):
    order = db.get_or_404(Order, order_id)
    shipment = db.session.get(Shipment, shipment_id)
    if shipment is None or shipment.order_id != order.id:
        abort(404)
    status = request.form.get("status", "")
    _, refused = _run(order, "shipment_status",
                      lambda: order_service.set_shipment_status(shipment, status, user=current_user), shipment.id)
    if refused:
        return refused
    flash(f"Shipment #{shipment.id} is now {status.replace('_', ' ')}.", "success")
    return _back(order)
