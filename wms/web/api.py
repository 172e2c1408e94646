"""The JSON API under /api/v1: stock movements, levels, orders and products, for other systems.

Every request carries ``Authorization: Bearer <token>`` (tokens are made on /account); a session cookie
does not count. Every answer is JSON, and every error is ``{"code", "message", "field"?, "index"?}``
with the session rolled back, so bad input writes nothing. The stock and order rules live in the
services; this module only turns JSON into service calls and results back into JSON.
Reference: docs/api.md.
"""

import json
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from flask import Blueprint, current_app, g, jsonify, request, url_for
from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager, joinedload, selectinload
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from wms.core.errors import NotFound, ServiceError
from wms.core.models import (
    ApiToken, Location, LocationLevel, Order, OrderLine, Product, ShippingProcess, StockMovement, Warehouse,
    WarehouseLevel,
)
from wms.core.models._base import utcnow
from wms.core.models.orders import ORDER_STATUSES
from wms.core.services import catalog, inventory, levels, orders
from wms.extensions import csrf, db

from . import access

bp = Blueprint("api", __name__, url_prefix="/api/v1")
access.set_blueprint_rule(bp, "token")
csrf.exempt(bp)

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 500
MAX_PAGE = 1_000_000
TOUCH_INTERVAL = timedelta(minutes=1)
# Client keys are stored with this prefix so they never collide with the keys the app makes itself
# ("form:...", "ship:...", "reversal:...").
KEY_PREFIX = "api:"


# -- authentication ------------------------------------------------------------------------------

@bp.before_request
def authenticate():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ServiceError("missing_token", "Send an API token as 'Authorization: Bearer <token>'; "
                           "create one on your account page.", status=401)
    row = db.session.scalar(select(ApiToken).options(joinedload(ApiToken.user))
                            .where(ApiToken.token_hash == ApiToken.hash(token)))
    if row is None:
        raise ServiceError("invalid_token", "This API token is not known.", status=401)
    if row.revoked_at is not None:
        raise ServiceError("token_revoked", "This API token was revoked; create a new one.", status=401)
    if not row.user.is_active:
        raise ServiceError("user_inactive", "The user of this API token is deactivated.", status=401)
    g.api_user = row.user
    _touch(row)


def _touch(token):
    """Record use at most once a minute per token; the WHERE keeps concurrent requests to one write."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_INTERVAL:
        return
    db.session.execute(update(ApiToken)
                       .where(ApiToken.id == token.id,
                              or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOUCH_INTERVAL))
                       .values(last_used_at=now))
    db.session.commit()


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


# -- errors --------------------------------------------------------------------------------------

def _error_body(exc):
    body = exc.as_dict()
    if getattr(exc, "index", None) is not None:
        body["index"] = exc.index
    return body


@bp.errorhandler(ServiceError)
def service_error(exc):
    db.session.rollback()
    response = jsonify(_error_body(exc))
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="wms"'
    return response, exc.status


@bp.errorhandler(HTTPException)
def http_error(exc):
    db.session.rollback()
    if isinstance(exc, RequestEntityTooLarge):
        return jsonify(code="body_too_large", message="The request body is too large."), 413
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    return jsonify(code=code, message=exc.description), exc.code


@bp.errorhandler(Exception)
def unexpected_error(exc):
    db.session.rollback()
    current_app.logger.exception("API request failed")
    return jsonify(code="internal_error", message="Something went wrong on our side; nothing was saved."), 500


@bp.app_errorhandler(405)
def method_not_allowed(exc):
    """Routing errors never reach the blueprint's handlers; answer them in JSON for API paths only."""
    if not request.path.startswith(bp.url_prefix + "/"):
        return exc
    response = jsonify(code="method_not_allowed", message=f"{request.method} is not allowed here.")
    if getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response, 405


@contextmanager
def at_index(index):
    """Name the batch item an error came from."""
    try:
        yield
    except ServiceError as exc:
        exc.index = index
        raise


# -- reading requests ----------------------------------------------------------------------------

def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def read_json():
    """The request's JSON object. Checks type and size before parsing; money stays Decimal."""
    limit = current_app.config["WMS_API_MAX_BODY"]
    too_large = ServiceError("body_too_large", f"The request body is over {limit:,} bytes.", status=413)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    if request.mimetype != "application/json":
        raise ServiceError("unsupported_media_type", "Send the body as JSON with "
                           "'Content-Type: application/json'.", status=415)
    raw = request.stream.read(limit + 1)   # a body sent without Content-Length is bounded here
    if len(raw) > limit:
        raise too_large
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ServiceError("malformed_json", f"The body is not valid JSON: {exc}.")
    if not isinstance(data, dict):
        raise ServiceError("invalid_body", "The body must be a JSON object.")
    return data


def reject_unknown(data, allowed, prefix="", hint=""):
    extra = sorted(set(data) - set(allowed))
    if extra:
        field = prefix + extra[0]
        raise ServiceError("unexpected_field", f"{field} is not a field here.{hint}", field=field)


def text(data, key, field=None, *, required=False, column=None, code="missing_field", message=None):
    """A stripped string or None. `column` bounds its length by the model's column."""
    field = field or key
    value = data.get(key)
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        if required:
            raise ServiceError(code, message or f"{field} is required.", field=field)
        return None
    if not isinstance(value, str):
        raise ServiceError("invalid_type", f"{field} must be a string.", field=field)
    length = getattr(column.type, "length", None) if column is not None else None
    if length and len(value) > length:
        raise ServiceError("too_long", f"{field} must be at most {length} characters.", field=field)
    return value


def whole_number(value, field):
    """A JSON integer (not a string, a fraction or a boolean), in the services' range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError("invalid_quantity", f"{field} must be a whole number of units.", field=field)
    return inventory.check_quantity(value, field=field)


def signed_delta(value, field="delta"):
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise ServiceError("invalid_quantity", f"{field} must be a whole number other than 0 "
                           "(negative to remove units).", field=field)
    inventory.check_quantity(abs(value), field=field)
    return value


def flag(data, key, field=None):
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ServiceError("invalid_type", f"{field or key} must be true or false.", field=field or key)
    return value


def client_key(data, column):
    key = text(data, "idempotency_key")
    if key is None:
        return None
    limit = column.type.length - len(KEY_PREFIX)
    if len(key) > limit:
        raise ServiceError("too_long", f"idempotency_key must be at most {limit} characters.",
                           field="idempotency_key")
    return KEY_PREFIX + key


def shown_key(key):
    return key[len(KEY_PREFIX):] if key and key.startswith(KEY_PREFIX) else key


def product_by_sku(code, field="sku"):
    product = (db.session.scalar(select(Product).where(Product.sku == code))
               or db.session.scalar(select(Product).where(Product.barcode == code)))
    if product is None:
        raise NotFound("unknown_product", f"No product with SKU or barcode {code!r}.", field=field)
    return product


def location_by_code(code, field):
    location = catalog.find_location(code)
    if location is None:
        raise NotFound("unknown_location", f"No location {code!r}; use WAREHOUSE/BIN or the bin's barcode.",
                       field=field)
    return location


def warehouse_by_code(code, field="warehouse"):
    warehouse = db.session.scalar(select(Warehouse).where(Warehouse.code == code.upper()))
    if warehouse is None:
        raise NotFound("unknown_warehouse", f"No warehouse with code {code!r}.", field=field)
    return warehouse


# -- pagination ----------------------------------------------------------------------------------

def query_args(allowed):
    extra = sorted(set(request.args) - set(allowed) - {"page", "per_page"})
    if extra:
        raise ServiceError("unknown_parameter", f"Unknown query parameter {extra[0]!r}.", field=extra[0])
    return {key: request.args[key].strip() for key in allowed if request.args.get(key, "").strip()}


def _positive_arg(name, default, maximum):
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise ServiceError(f"invalid_{name}", f"{name} must be a whole number from 1 to {maximum:,}.",
                           field=name)
    return int(raw)


def paginate(statement, render):
    """One page of `statement` as {"items", "page", "per_page", "total", "next"}."""
    page = _positive_arg("page", 1, MAX_PAGE)
    per_page = _positive_arg("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    rows = db.session.scalars(statement.offset((page - 1) * per_page).limit(per_page)).unique().all()
    next_url = None
    if page * per_page < total:
        next_url = url_for(request.endpoint, **(request.view_args or {}),
                           **{**request.args.to_dict(), "page": page + 1}, _external=True)
    return jsonify(items=render(rows), page=page, per_page=per_page, total=total, next=next_url)


# -- rendering -----------------------------------------------------------------------------------

def iso(value):
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat() + "Z"    # stored as naive UTC
    return value.isoformat()


def money(value):
    return None if value is None else str(value)


def movement_json(movement):
    data = {
        "id": movement.id, "kind": movement.kind, "sku": movement.product.sku, "product_id": movement.product_id,
        "quantity": movement.quantity, "from_location": movement.from_location.label,
        "to_location": movement.to_location.label, "reason": movement.reason, "note": movement.note,
        "reference": movement.reference, "idempotency_key": shown_key(movement.idempotency_key),
        "reverses_id": movement.reverses_id, "user": movement.user.email if movement.user else None,
        "created_at": iso(movement.created_at),
    }
    if movement.kind == "adjustment":
        data["delta"] = movement.quantity if movement.to_location.is_tracked else -movement.quantity
    return data


def levels_after(movements):
    """Current levels of every product, location and warehouse the movements touched."""
    location_keys, warehouse_keys = set(), set()
    for movement in movements:
        for location in (movement.from_location, movement.to_location):
            if location.is_tracked:
                location_keys.add((movement.product_id, location.id))
                warehouse_keys.add((movement.product_id, location.warehouse_id))
    warehouse_rows = db.session.scalars(
        select(WarehouseLevel).options(joinedload(WarehouseLevel.product), joinedload(WarehouseLevel.warehouse))
        .where(tuple_(WarehouseLevel.product_id, WarehouseLevel.warehouse_id).in_(sorted(warehouse_keys)))
        .order_by(WarehouseLevel.product_id, WarehouseLevel.warehouse_id)).all() if warehouse_keys else []
    location_rows = db.session.scalars(
        select(LocationLevel).options(joinedload(LocationLevel.product), joinedload(LocationLevel.location))
        .where(tuple_(LocationLevel.product_id, LocationLevel.location_id).in_(sorted(location_keys)))
        .order_by(LocationLevel.product_id, LocationLevel.location_id)).all() if location_keys else []
    return {
        "warehouses": [{"sku": r.product.sku, "warehouse": r.warehouse.code, "on_hand": r.on_hand,
                        "committed": r.committed, "available": r.available} for r in warehouse_rows],
        "locations": [{"sku": r.product.sku, "location": r.location.label, "on_hand": r.on_hand}
                      for r in location_rows],
    }


def order_json(order):
    return {
        "id": order.id, "number": order.number, "source": order.source, "status": order.status,
        "hold_reason": order.hold_reason,
        "warehouse": order.warehouse.code if order.warehouse else None,
        "shipping_process": order.shipping_process.name if order.shipping_process else None,
        "customer": {"name": order.customer_name, "email": order.customer_email, "phone": order.customer_phone,
                     "birth_date": iso(order.customer_birth_date)},
        "ship_to": {"name": order.ship_name, "address1": order.ship_address1, "address2": order.ship_address2,
                    "city": order.ship_city, "state": order.ship_state, "postal_code": order.ship_postal_code,
                    "country": order.ship_country},
        "shipping_method": order.shipping_method, "requested_ship_date": iso(order.requested_ship_date),
        "is_club": order.is_club, "is_pickup": order.is_pickup, "channel": order.channel,
        "financial_status": order.financial_status, "note": order.note,
        "idempotency_key": shown_key(order.idempotency_key),
        "placed_at": iso(order.placed_at), "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "lines": [{"id": line.id, "sku": line.sku, "name": line.name, "product_id": line.product_id,
                   "quantity": line.quantity, "unit_price": money(line.unit_price),
                   "quantity_reserved": line.quantity_reserved, "quantity_picked": line.quantity_picked,
                   "quantity_shipped": line.quantity_shipped} for line in order.lines],
        "shipments": [{"id": s.id, "carrier": s.carrier, "service": s.service,
                       "tracking_number": s.tracking_number, "tracking_url": s.tracking_url, "status": s.status,
                       "shipped_at": iso(s.shipped_at), "delivered_at": iso(s.delivered_at)}
                      for s in order.shipments],
    }


def _order_loading():
    return (joinedload(Order.warehouse), joinedload(Order.shipping_process),
            selectinload(Order.lines).selectinload(OrderLine.reservations), selectinload(Order.shipments))


# -- movements -----------------------------------------------------------------------------------

MOVEMENT_COMMON_FIELDS = ("kind", "sku", "reference", "note", "idempotency_key")
MOVEMENT_KIND_FIELDS = {
    "receipt": ("quantity", "location"),
    "return": ("quantity", "location"),
    "transfer": ("quantity", "from_location", "to_location"),
    "adjustment": ("delta", "reason", "location"),
}
SOURCE_OF_ARRIVALS = {"receipt": "supplier", "return": "customer"}


def movement_from(item):
    """An `inventory.Move` from one JSON movement, with the checks of inventory's single-movement
    functions (receive, adjust, transfer, receive_return); `inventory.post` checks the rest."""
    if not isinstance(item, dict):
        raise ServiceError("invalid_type", "A movement must be a JSON object.")
    kind = item.get("kind")
    if kind not in MOVEMENT_KIND_FIELDS:
        raise ServiceError("invalid_kind", "kind must be one of: " + ", ".join(MOVEMENT_KIND_FIELDS) + ".",
                           field="kind")
    hint = " Adjustments take a signed delta, not quantity." if kind == "adjustment" else ""
    reject_unknown(item, MOVEMENT_COMMON_FIELDS + MOVEMENT_KIND_FIELDS[kind], hint=hint)
    columns = StockMovement.__table__.c
    product = product_by_sku(text(item, "sku", required=True))
    details = {"reference": text(item, "reference", column=columns.reference),
               "note": text(item, "note", column=columns.note),
               "idempotency_key": client_key(item, columns.idempotency_key)}
    if kind == "adjustment":
        delta = signed_delta(item.get("delta"))
        location = inventory._tracked(location_by_code(text(item, "location", required=True), "location"),
                                      "location")
        reason = text(item, "reason", required=True, column=columns.reason, code="reason_required",
                      message="An adjustment needs a reason (count, breakage, sample...).")
        other = inventory.virtual_location("adjustment")
        source, target = (other, location) if delta > 0 else (location, other)
        return inventory.Move(product, source, target, abs(delta), kind, reason=reason, **details)
    quantity = whole_number(item.get("quantity"), "quantity")
    if kind == "transfer":
        source, target = (inventory._tracked(location_by_code(text(item, f, required=True), f), f)
                          for f in ("from_location", "to_location"))
        return inventory.Move(product, source, target, quantity, kind, **details)
    location = inventory._tracked(location_by_code(text(item, "location", required=True), "location"),
                                  "location")
    source = inventory.virtual_location(SOURCE_OF_ARRIVALS[kind])
    return inventory.Move(product, source, location, quantity, kind, **details)


def posted_keys(moves):
    """The idempotency keys among `moves` that were already posted.

    The level rows the moves touch are locked first (the locks `inventory.post` takes next anyway), so
    a concurrent request with the same key cannot post between this check and ours."""
    keys = [move.idempotency_key for move in moves if move.idempotency_key]
    if not keys:
        return set()
    probe = levels.LevelChanges()
    for move in moves:
        for location in (move.from_location, move.to_location):
            if location.is_tracked:
                probe.move(move.product.id, location, 0)
    levels.lock(probe)
    return set(db.session.scalars(select(StockMovement.idempotency_key)
                                  .where(StockMovement.idempotency_key.in_(keys))))


def check_replay(move, movement):
    """A repeated key must name the same movement; anything else is a client bug worth stopping."""
    same = (movement.kind == move.kind and movement.product_id == move.product.id
            and movement.quantity == move.quantity and movement.from_location_id == move.from_location.id
            and movement.to_location_id == move.to_location.id)
    if not same:
        raise ServiceError("idempotency_key_reused",
                           f"idempotency_key {shown_key(move.idempotency_key)!r} was already used for another "
                           f"movement (#{movement.id}: {movement.kind} of {movement.quantity}).",
                           field="idempotency_key", status=409)


@bp.post("/movements")
def create_movement():
    move = movement_from(read_json())
    replayed = move.idempotency_key in posted_keys([move])
    movement = inventory.post([move], g.api_user)[0]
    check_replay(move, movement)
    db.session.commit()
    body = {"movement": movement_json(movement), "levels": levels_after([movement]), "replayed": replayed}
    return jsonify(body), 200 if replayed else 201


def batch_items(body):
    reject_unknown(body, ("movements",))
    items = body.get("movements")
    limit = current_app.config["WMS_API_MAX_BATCH"]
    if not isinstance(items, list) or not items:
        raise ServiceError("invalid_batch", "movements must be a non-empty list.", field="movements")
    if len(items) > limit:
        raise ServiceError("batch_too_large", f"A batch holds at most {limit:,} movements; this one has "
                           f"{len(items):,}.", field="movements")
    return items


def check_distinct_keys(moves):
    seen = {}
    for index, move in enumerate(moves):
        if move.idempotency_key is None:
            continue
        if move.idempotency_key in seen:
            error = ServiceError("duplicate_idempotency_key", f"Movements {seen[move.idempotency_key]} and "
                                 f"{index} share an idempotency_key.", field="idempotency_key")
            error.index = index
            raise error
        seen[move.idempotency_key] = index


def failing_item(items, error):
    """`inventory.post` checks a batch as a whole; post the items one by one (then roll back) to find
    the first one the rules refuse, and return its error."""
    db.session.rollback()
    try:
        for index, item in enumerate(items):
            with at_index(index):
                inventory.post([movement_from(item)], g.api_user)
    except ServiceError as found:
        return found
    finally:
        db.session.rollback()
    return error


@bp.post("/movements/batch")
def create_movement_batch():
    items = batch_items(read_json())
    moves = []
    for index, item in enumerate(items):
        with at_index(index):
            moves.append(movement_from(item))
    check_distinct_keys(moves)
    already = posted_keys(moves)
    try:
        movements = inventory.post(moves, g.api_user)
    except ServiceError as exc:
        raise failing_item(items, exc)
    for index, (move, movement) in enumerate(zip(moves, movements)):
        with at_index(index):
            check_replay(move, movement)
    replayed = [move.idempotency_key in already for move in moves]
    db.session.commit()
    body = {"movements": [{"index": i, "replayed": r, "movement": movement_json(m)}
                          for i, (m, r) in enumerate(zip(movements, replayed))],
            "levels": levels_after(movements)}
    return jsonify(body), 200 if all(replayed) else 201


# -- levels --------------------------------------------------------------------------------------

@bp.get("/levels")
def list_levels():
    args = query_args(("sku", "warehouse", "location"))
    statement = (select(WarehouseLevel).join(Product).join(Warehouse)
                 .options(contains_eager(WarehouseLevel.product), contains_eager(WarehouseLevel.warehouse))
                 .order_by(Product.sku, Warehouse.code))
    location = None
    if "sku" in args:
        statement = statement.where(WarehouseLevel.product_id == product_by_sku(args["sku"]).id)
    if "warehouse" in args:
        statement = statement.where(WarehouseLevel.warehouse_id == warehouse_by_code(args["warehouse"]).id)
    if "location" in args:
        location = location_by_code(args["location"], "location")
        held_there = select(LocationLevel).where(LocationLevel.product_id == WarehouseLevel.product_id,
                                                 LocationLevel.location_id == location.id).exists()
        statement = statement.where(WarehouseLevel.warehouse_id == location.warehouse_id, held_there)
    return paginate(statement, lambda rows: _level_items(rows, location))


def _level_items(rows, location=None):
    keys = [(r.product_id, r.warehouse_id) for r in rows]
    by_key = {key: [] for key in keys}
    if keys:
        statement = (select(LocationLevel).join(Location).options(joinedload(LocationLevel.location))
                     .where(tuple_(LocationLevel.product_id, LocationLevel.warehouse_id).in_(keys))
                     .order_by(Location.code))
        if location is not None:
            statement = statement.where(LocationLevel.location_id == location.id)
        for level in db.session.scalars(statement):
            by_key[(level.product_id, level.warehouse_id)].append(
                {"location": level.location.label, "code": level.location.code, "usage": level.location.usage,
                 "on_hand": level.on_hand})
    return [{"sku": r.product.sku, "product_id": r.product_id, "name": r.product.name,
             "warehouse": r.warehouse.code, "on_hand": r.on_hand, "committed": r.committed,
             "available": r.available, "locations": by_key[(r.product_id, r.warehouse_id)]} for r in rows]


# -- orders --------------------------------------------------------------------------------------

ORDER_TOP_FIELDS = ("number", "lines", "warehouse", "shipping_process", "customer", "ship_to",
                    "shipping_method", "requested_ship_date", "is_club", "is_pickup", "channel",
                    "financial_status", "note", "idempotency_key")
LINE_FIELDS = ("sku", "quantity", "unit_price", "name")
# API name -> Order column, for the text details create_order takes.
ORDER_TEXT_DETAILS = {
    "shipping_method": "shipping_method", "requested_ship_date": "requested_ship_date", "channel": "channel",
    "financial_status": "financial_status", "note": "note",
    "customer.name": "customer_name", "customer.email": "customer_email", "customer.phone": "customer_phone",
    "customer.birth_date": "customer_birth_date",
    "ship_to.name": "ship_name", "ship_to.address1": "ship_address1", "ship_to.address2": "ship_address2",
    "ship_to.city": "ship_city", "ship_to.state": "ship_state", "ship_to.postal_code": "ship_postal_code",
    "ship_to.country": "ship_country",
}
API_FIELD_OF_COLUMN = {column: name for name, column in ORDER_TEXT_DETAILS.items()}


def _parse_time(value, field):
    try:
        moment = datetime.fromisoformat(value.replace(" ", "+") if "T" in value else value)
    except ValueError:
        raise ServiceError("invalid_time", f"{field} must be an ISO time such as 2026-05-01T08:00:00Z.",
                           field=field)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


@bp.get("/orders")
def list_orders():
    args = query_args(("status", "updated_since"))
    statement = select(Order).options(*_order_loading()).order_by(Order.updated_at, Order.id)
    if "status" in args:
        if args["status"] not in ORDER_STATUSES:
            raise ServiceError("invalid_status", "status must be one of: " + ", ".join(ORDER_STATUSES) + ".",
                               field="status")
        statement = statement.where(Order.status == args["status"])
    if "updated_since" in args:
        statement = statement.where(Order.updated_at >= _parse_time(args["updated_since"], "updated_since"))
    return paginate(statement, lambda rows: [order_json(order) for order in rows])


@bp.get("/orders/<int:order_id>")
def get_order(order_id):
    order = db.session.scalar(select(Order).options(*_order_loading()).where(Order.id == order_id))
    if order is None:
        raise NotFound("unknown_order", f"No order with id {order_id}.")
    return jsonify(order=order_json(order))


def _part(body, key, allowed):
    part = body.get(key)
    if part is None:
        return {}
    if not isinstance(part, dict):
        raise ServiceError("invalid_type", f"{key} must be a JSON object.", field=key)
    reject_unknown(part, allowed, prefix=f"{key}.")
    return part


def _order_details(body):
    columns = Order.__table__.c
    parts = {"": body,
             "customer": _part(body, "customer", ("name", "email", "phone", "birth_date")),
             "ship_to": _part(body, "ship_to", ("name", "address1", "address2", "city", "state", "postal_code",
                                                "country"))}
    details = {}
    for name, column in ORDER_TEXT_DETAILS.items():
        part, _, key = name.rpartition(".")
        value = text(parts[part], key, name, column=columns[column])
        if value is not None:
            details[column] = value
    for key in ("is_club", "is_pickup"):
        value = flag(body, key)
        if value is not None:
            details[key] = value
    return details


def _order_lines(body):
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ServiceError("no_lines", "lines must be a non-empty list.", field="lines")
    columns, result = OrderLine.__table__.c, []
    for index, line in enumerate(lines):
        prefix = f"lines[{index}]."
        if not isinstance(line, dict):
            raise ServiceError("invalid_type", f"Line {index + 1} must be a JSON object.", field=f"lines[{index}]")
        reject_unknown(line, LINE_FIELDS, prefix=prefix)
        price = line.get("unit_price")
        if price is not None and (isinstance(price, bool) or not isinstance(price, (int, Decimal, str))):
            raise ServiceError("invalid_price", f"Line {index + 1}: unit_price must be a number.",
                               field=prefix + "unit_price")
        result.append(orders.LineInput(
            sku=text(line, "sku", prefix + "sku", required=True, column=columns.sku),
            quantity=whole_number(line.get("quantity"), prefix + "quantity"),
            unit_price=price, name=text(line, "name", prefix + "name", column=columns.name) or ""))
    return result


def _route(body):
    warehouse_code = text(body, "warehouse")
    warehouse = warehouse_by_code(warehouse_code) if warehouse_code else None
    name = text(body, "shipping_process")
    if name is None:
        return warehouse, None
    statement = select(ShippingProcess).where(ShippingProcess.name == name)
    if warehouse is not None:
        statement = statement.where(ShippingProcess.warehouse_id == warehouse.id)
    processes = db.session.scalars(statement.limit(2)).all()
    if not processes:
        where = f" in {warehouse.code}" if warehouse else ""
        raise NotFound("unknown_shipping_process", f"No shipping process {name!r}{where}.",
                       field="shipping_process")
    if len(processes) > 1:
        raise ServiceError("ambiguous_shipping_process", f"Several warehouses have a shipping process {name!r}; "
                           "name the warehouse too.", field="shipping_process")
    return processes[0].warehouse, processes[0]


def order_input(body):
    reject_unknown(body, ORDER_TOP_FIELDS)
    columns = Order.__table__.c
    warehouse, process = _route(body)
    return orders.OrderInput(
        lines=_order_lines(body), number=text(body, "number", column=columns.number), source="api",
        warehouse=warehouse, shipping_process=process,
        idempotency_key=client_key(body, columns.idempotency_key), details=_order_details(body))


def _existing_order(key):
    return db.session.scalar(select(Order).where(Order.idempotency_key == key)) if key else None


@bp.post("/orders")
def create_order():
    data = order_input(read_json())
    replayed = _existing_order(data.idempotency_key) is not None
    try:
        order = orders.create_order(data, g.api_user)
        db.session.commit()
    except ServiceError as exc:
        exc.field = API_FIELD_OF_COLUMN.get(exc.field, exc.field)
        raise
    except IntegrityError:
        # Another request with the same idempotency_key committed first: answer with its order.
        db.session.rollback()
        order, replayed = _existing_order(data.idempotency_key), True
        if order is None:
            raise
    order = db.session.scalar(select(Order).options(*_order_loading()).where(Order.id == order.id))
    return jsonify(order=order_json(order), replayed=replayed), 200 if replayed else 201


# -- products ------------------------------------------------------------------------------------

@bp.get("/products")
def list_products():
    args = query_args(("q", "active"))
    statement = select(Product).order_by(Product.sku)
    if "q" in args:
        q = args["q"]
        statement = statement.where(or_(*(column.icontains(q, autoescape=True) for column in
                                          (Product.sku, Product.name, Product.barcode, Product.brand,
                                           Product.varietal))))
    if "active" in args:
        if args["active"] not in ("true", "false"):
            raise ServiceError("invalid_active", "active must be true or false.", field="active")
        statement = statement.where(Product.is_active.is_(args["active"] == "true"))
    return paginate(statement, _product_items)


def _product_items(products):
    ids = [p.id for p in products]
    totals = {row.product_id: row for row in db.session.execute(
        select(WarehouseLevel.product_id, func.sum(WarehouseLevel.on_hand).label("on_hand"),
               func.sum(WarehouseLevel.committed).label("committed"))
        .where(WarehouseLevel.product_id.in_(ids)).group_by(WarehouseLevel.product_id))} if ids else {}
    items = []
    for p in products:
        total = totals.get(p.id)
        on_hand, committed = (int(total.on_hand), int(total.committed)) if total else (0, 0)
        items.append({
            "id": p.id, "sku": p.sku, "barcode": p.barcode, "name": p.name, "brand": p.brand,
            "varietal": p.varietal, "appellation": p.appellation, "vintage": p.vintage,
            "bottle_size_ml": p.bottle_size_ml, "case_quantity": p.case_quantity,
            "retail_price": money(p.retail_price), "alcohol_pct": money(p.alcohol_pct), "is_active": p.is_active,
            "on_hand": on_hand, "committed": committed, "available": on_hand - committed})
    return items
