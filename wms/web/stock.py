"""Operator stock pages: receive, adjust, transfer, stock by product and location, movement history.

Every form carries a one-time `form_key`, used as the movement's idempotency key, so a double click
or a resubmitted page posts once.
"""

import uuid
from datetime import date, datetime, time, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import selectinload

from wms.core.errors import ServiceError
from wms.core.models import (
    Location, LocationLevel, LocationUsage, Product, StockMovement, User, Warehouse, WarehouseLevel,
)
from wms.core.models.stock import MOVEMENT_KINDS
from wms.core.services import catalog, inventory
from wms.extensions import db

from . import access
from .forms import errors_from, int_or_none, refuse

bp = Blueprint("stock", __name__, url_prefix="/stock")


def bins():
    """Active bins of active warehouses, for location pickers."""
    return db.session.scalars(
        select(Location).join(Warehouse)
        .where(Location.usage == LocationUsage.INTERNAL.value, Location.is_active, Warehouse.is_active)
        .order_by(Warehouse.code, Location.code)).all()


def bin_options():
    return [(loc.id, loc.label) for loc in bins()]


def resolve_location(form, field):
    """A location from a scanned code (field) or a picked id (field + '_id')."""
    code = form.get(field, "").strip()
    if code:
        location = catalog.find_location(code)
        if location is None:
            raise ServiceError("unknown_location", f"No location {code!r}.", field=field)
        return location
    location_id = form.get(f"{field}_id", "")
    location = db.session.get(Location, int(location_id)) if location_id.isdigit() else None
    if location is None:
        raise ServiceError("unknown_location", "Choose or scan a location.", field=field)
    return location


def resolve_product(form, field="product"):
    code = form.get(field, "").strip()
    if not code:
        raise ServiceError("product_required", "Scan a barcode or type a SKU.", field=field)
    product = catalog.find_product(code)
    if product is None:
        raise ServiceError("unknown_product", f"No product with barcode or SKU {code!r}.", field=field)
    return product


def form_key():
    return uuid.uuid4().hex


def _available(product_id, warehouse_id):
    level = db.session.get(WarehouseLevel, (product_id, warehouse_id), populate_existing=True)
    return level.available if level else 0


@bp.route("/receive", methods=["GET", "POST"])
def receive():
    context = {"bins": bin_options(), "form_key": form_key()}
    if request.method == "GET":
        return render_template("stock/receive.html", errors={},
                               form={"location_id": request.args.get("location_id", "")}, **context)
    form = request.form
    try:
        product = resolve_product(form)
        location = resolve_location(form, "location")
        movement = inventory.receive(product, location, form.get("quantity", "").strip(), user=current_user,
                                     reference=form.get("reference", "").strip() or None,
                                     note=form.get("note", "").strip() or None,
                                     idempotency_key=f"form:{form.get('form_key', '')}" if form.get("form_key") else None)
        db.session.commit()
    except ServiceError as exc:
        return refuse("stock/receive.html", exc, form=form, **context)
    flash(f"Received {movement.quantity} × {product.sku} into {location.label}. "
          f"Available in {location.warehouse.code}: {_available(product.id, location.warehouse_id)}.", "success")
    return redirect(url_for("stock.receive", location_id=location.id))


# -- shared by the stock and order pages ---------------------------------------------------------

PER_PAGE = 50
ADJUST_REASONS = [
    ("count", "Count correction"), ("breakage", "Breakage"), ("sample", "Sample / tasting"),
    ("lost", "Lost"), ("found", "Found"), ("other", "Other"),
]
_REASON_LABELS = dict(ADJUST_REASONS)


def scoped_errors(exc, fields, aliases=None):
    """{field: message} for a page whose form has `fields`; a message for any other field goes
    under '_form', so no error is ever lost for want of a field to show it next to. `aliases` maps
    a service's field name to the form's ('warehouse' -> 'warehouse_id')."""
    errors = {}
    for name, message in errors_from(exc).items():
        name = (aliases or {}).get(name, name)
        key = name if name in fields else "_form"
        errors[key] = f"{errors[key]} {message}" if key in errors else message
    return errors


def refuse_fields(template, exc, fields, **context):
    """`forms.refuse`, with errors for fields the form lacks shown at the top of the form."""
    db.session.rollback()
    return render_template(template, errors=scoped_errors(exc, fields), form=context.pop("form", {}),
                           **context), 400


def text_input(form, field, max_length, label):
    value = form.get(field, "").strip()
    if len(value) > max_length:
        raise ServiceError("too_long", f"{label}: at most {max_length} characters.", field=field)
    return value


def scanned_location(form, field, warehouse=None):
    """A location from a scanned barcode or a typed code ('A-01' or 'MAIN/A-01')."""
    code = form.get(field, "").strip()
    if not code:
        raise ServiceError("location_required", "Scan or type a location.", field=field)
    location = catalog.find_location(code, warehouse=warehouse)
    if location is not None:
        return location
    same_code = db.session.scalar(select(func.count()).select_from(Location)
                                  .where(Location.code == code.upper(), Location.warehouse_id.is_not(None)))
    if same_code > 1:
        raise ServiceError("ambiguous_location", f"{code} exists in several warehouses; type it as "
                           f"WAREHOUSE/{code.upper()}.", field=field)
    raise ServiceError("unknown_location", f"No location {code!r}.", field=field)


def idempotency_key(form):
    key = form.get("form_key", "").strip()
    return f"form:{key}" if key else None


def bin_labels():
    return [loc.label for loc in bins()]


def on_hand_at(product, location):
    return inventory.current_location_on_hand(product.id, location.id)


def paginate(query):
    return db.paginate(query, page=int_or_none(request.args.get("page")) or 1, per_page=PER_PAGE,
                       error_out=False)


def warehouse_options():
    warehouses = db.session.scalars(select(Warehouse).where(Warehouse.is_active).order_by(Warehouse.code))
    return [(w.id, f"{w.code} · {w.name}" + (" (external)" if w.is_external else "")) for w in warehouses]


def parse_day(value, field):
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ServiceError("invalid_date", "Use a date like 2026-12-24.", field=field)


# -- adjust --------------------------------------------------------------------------------------

ADJUST_FIELDS = ("product", "location", "quantity", "reason", "reason_other", "note")


def adjustment_reason(form):
    choice = form.get("reason", "")
    if choice not in _REASON_LABELS:
        raise ServiceError("reason_required", "Choose a reason for the adjustment.", field="reason")
    if choice != "other":
        return _REASON_LABELS[choice]
    described = text_input(form, "reason_other", 200, "Reason")
    if not described:
        raise ServiceError("reason_required", "Describe the reason.", field="reason_other")
    return f"Other: {described}"


@bp.route("/adjust", methods=["GET", "POST"])
def adjust():
    context = {"bin_labels": bin_labels(), "reasons": ADJUST_REASONS, "form_key": form_key()}
    if request.method == "GET":
        return render_template("stock/adjust.html", errors={},
                               form={"location": request.args.get("location", "")}, **context)
    form = request.form
    try:
        product = resolve_product(form)
        location = scanned_location(form, "location")
        reason = adjustment_reason(form)
        movement = inventory.adjust(product, location, form.get("quantity", "").strip(), reason,
                                    user=current_user, note=text_input(form, "note", 500, "Note") or None,
                                    idempotency_key=idempotency_key(form))
        db.session.commit()
    except ServiceError as exc:
        return refuse_fields("stock/adjust.html", exc, ADJUST_FIELDS, form=form, **context)
    sign = "+" if movement.to_location_id == location.id else "-"
    flash(f"Adjusted {product.sku} at {location.label} by {sign}{movement.quantity} ({movement.reason}). "
          f"On hand there now: {on_hand_at(product, location)}.", "success")
    return redirect(url_for("stock.adjust", location=location.label))


# -- transfer ------------------------------------------------------------------------------------

TRANSFER_FIELDS = ("product", "from_location", "to_location", "quantity", "reference", "note")


@bp.route("/transfer", methods=["GET", "POST"])
def transfer():
    context = {"bin_labels": bin_labels(), "form_key": form_key()}
    if request.method == "GET":
        return render_template("stock/transfer.html", errors={},
                               form={"from_location": request.args.get("from_location", "")}, **context)
    form = request.form
    try:
        product = resolve_product(form)
        source = scanned_location(form, "from_location")
        target = scanned_location(form, "to_location")
        movement = inventory.transfer(
            product, source, target, form.get("quantity", "").strip(), user=current_user,
            reference=text_input(form, "reference", 120, "Reference") or None,
            note=text_input(form, "note", 500, "Note") or None, idempotency_key=idempotency_key(form))
        db.session.commit()
    except ServiceError as exc:
        return refuse_fields("stock/transfer.html", exc, TRANSFER_FIELDS, form=form, **context)
    flash(f"Moved {movement.quantity} × {product.sku} from {source.label} to {target.label}. "
          f"Now {on_hand_at(product, source)} at {source.label} and {on_hand_at(product, target)} "
          f"at {target.label}.", "success")
    return redirect(url_for("stock.transfer", from_location=source.label))


# -- stock levels --------------------------------------------------------------------------------

def product_search(query, text):
    """Products whose SKU, name or barcode contains `text` (any case)."""
    needle = text.lower()
    return query.where(or_(func.lower(Product.sku).contains(needle, autoescape=True),
                           func.lower(Product.name).contains(needle, autoescape=True),
                           func.lower(Product.barcode).contains(needle, autoescape=True)))


def bins_holding(warehouse_levels):
    """{(product_id, warehouse_id): [(location, on_hand), ...]} for the given warehouse level rows."""
    pairs = {(level.product_id, level.warehouse_id) for level in warehouse_levels}
    if not pairs:
        return {}
    rows = db.session.execute(
        select(LocationLevel, Location).join(Location, Location.id == LocationLevel.location_id)
        .where(LocationLevel.product_id.in_({p for p, _ in pairs}),
               LocationLevel.warehouse_id.in_({w for _, w in pairs}), LocationLevel.on_hand != 0)
        .order_by(Location.code)).all()
    found = {}
    for level, location in rows:
        key = (level.product_id, level.warehouse_id)
        if key in pairs:
            found.setdefault(key, []).append((location, level.on_hand))
    return found


@bp.route("/levels")
def levels():
    args = request.args
    query = (select(WarehouseLevel).join(Product, Product.id == WarehouseLevel.product_id)
             .join(Warehouse, Warehouse.id == WarehouseLevel.warehouse_id)
             .options(selectinload(WarehouseLevel.product), selectinload(WarehouseLevel.warehouse))
             .order_by(Product.sku, Warehouse.code))
    if args.get("q", "").strip():
        query = product_search(query, args["q"].strip())
    warehouse_id = int_or_none(args.get("warehouse_id"))
    if warehouse_id:
        query = query.where(WarehouseLevel.warehouse_id == warehouse_id)
    if not args.get("show_zero"):
        query = query.where(or_(WarehouseLevel.on_hand != 0, WarehouseLevel.committed != 0))
    page = paginate(query)
    return render_template("stock/levels.html", page=page, bins=bins_holding(page.items),
                           warehouses=warehouse_options(), args=args)


# -- movement history ----------------------------------------------------------------------------

def movement_filters(query, args):
    """Apply the history page's filters; returns (query, errors) with errors next to bad filters."""
    errors = {}
    if args.get("product", "").strip():
        query = query.where(StockMovement.product_id.in_(product_search(select(Product.id), args["product"].strip())))
    if args.get("kind") in MOVEMENT_KINDS:
        query = query.where(StockMovement.kind == args["kind"])
    warehouse_id = int_or_none(args.get("warehouse_id"))
    if warehouse_id:
        in_warehouse = select(Location.id).where(Location.warehouse_id == warehouse_id)
        query = query.where(or_(StockMovement.from_location_id.in_(in_warehouse),
                                StockMovement.to_location_id.in_(in_warehouse)))
    if args.get("location", "").strip():
        try:
            location = scanned_location(args, "location")
            query = query.where(or_(StockMovement.from_location_id == location.id,
                                    StockMovement.to_location_id == location.id))
        except ServiceError as exc:
            errors.update(errors_from(exc))
    if args.get("reference", "").strip():
        query = query.where(func.lower(StockMovement.reference)
                            .contains(args["reference"].strip().lower(), autoescape=True))
    user_id = int_or_none(args.get("user_id"))
    if user_id:
        query = query.where(StockMovement.user_id == user_id)
    for field in ("date_from", "date_to"):
        try:
            day = parse_day(args.get(field, "").strip(), field)
        except ServiceError as exc:
            errors.update(errors_from(exc))
            continue
        if day and field == "date_from":
            query = query.where(StockMovement.created_at >= datetime.combine(day, time.min))
        elif day:
            query = query.where(StockMovement.created_at < datetime.combine(day + timedelta(days=1), time.min))
    return query, errors


def _history_page(errors=None, reverse_errors=None, reverse_form=None, failed_id=None):
    args = request.args
    query = (select(StockMovement).order_by(StockMovement.created_at.desc(), StockMovement.id.desc())
             .options(selectinload(StockMovement.product), selectinload(StockMovement.user),
                      selectinload(StockMovement.from_location).selectinload(Location.warehouse),
                      selectinload(StockMovement.to_location).selectinload(Location.warehouse)))
    query, filter_errors = movement_filters(query, args)
    if filter_errors:
        query = query.where(false())
    page = paginate(query)
    ids = [m.id for m in page.items]
    reversed_by = dict(db.session.execute(
        select(StockMovement.reverses_id, StockMovement.id).where(StockMovement.reverses_id.in_(ids))).all())
    users = db.session.scalars(select(User).order_by(User.name, User.email)).all()
    return render_template("stock/movements.html", page=page, args=args, errors=filter_errors,
                           reversed_by=reversed_by, kind_options=[(k, k) for k in MOVEMENT_KINDS],
                           warehouses=warehouse_options(),
                           users=[(u.id, u.name or u.email) for u in users],
                           reverse_errors=reverse_errors or {}, reverse_form=reverse_form or {},
                           failed_id=failed_id)


@bp.route("/movements")
def movements():
    return _history_page()


@bp.route("/movements/<int:movement_id>/reverse", methods=["POST"])
@access.admin_only
def reverse_movement(movement_id):
    movement = db.session.get(StockMovement, movement_id)
    if movement is None:
        abort(404)
    try:
        reversal = inventory.reverse(movement, reason=text_input(request.form, "reason", 200, "Reason"),
                                     user=current_user)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        return _history_page(reverse_errors=scoped_errors(exc, ("reason",)), reverse_form=request.form,
                             failed_id=movement_id), 400
    flash(f"Movement #{movement.id} reversed by movement #{reversal.id}: {reversal.quantity} × "
          f"{movement.product.sku} back to {reversal.to_location.label}.", "success")
    return redirect(url_for("stock.movements", **request.args))
