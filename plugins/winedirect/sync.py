"""The WineDirect plugin's work: order submission and status, shipments, inventory, products, and
the connection state the dashboard shows. Every remote call goes through `call()`, which commits the
session first (no write transaction stays open while WineDirect answers) and records the
connection state after it.

Sync state lives in `SyncRecord(plugin="winedirect")`:
* object_type "order": status pending (queued / being submitted / submitted, not yet visible),
  synced (WineDirect has it; data.state says where it is), failed (refused or needing action, with
  WineDirect's message), voided (cancelled); remote_reference is the WineDirect order number (the
  batch number while the order is in WineDirect's queue).
* object_type "product": synced with the WineDirect SKU, or failed with what is missing / refused.
* object_type "connection", object_id 0: the connection state and the sync bookkeeping.
"""

import secrets as pysecrets
from datetime import date, datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select, update

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import LocationUsage, Order, Product, Shipment, Warehouse, WarehouseLevel
from wms.core.models._base import utcnow
from wms.core.services import catalog, inventory, orders
from wms.extensions import db
from wms.integrations.errors import (
    PermanentRemoteError, RemoteAuthError, RemoteRejected, RemoteUnavailable, TransientRemoteError,
)
from wms.integrations.http import DEFAULT_TIMEOUT
from wms.plugins.manager import plugin_host
from wms.plugins.models import SyncRecord

from . import contract as c
from .client import Address, OrderLine, OrderSubmission, WineDirectClient, WineProduct

PLUGIN = "winedirect"
WAREHOUSE_PREFIX = "WD-"
STOCK_BIN = "STOCK"
PROCESS_NAME = "WineDirect"
BATCH_LIMIT = c.MAX_ORDERS_PER_SUBMIT
STALE_CLAIM = timedelta(minutes=10)
TAGS = {"synced": "winedirect-managed", "missing": "winedirect-unsynced", "error": "winedirect-sync-error"}
REQUIRED_SETTINGS = (("api_url", "API address"), ("username", "Username"), ("password", "Password"),
                     ("account_number", "Account number"), ("supplier_id", "Supplier ID"))
SHIPPED_STATES = ("shipped", "in_transit", "out_for_delivery", "delivered", "exception", "returned")
OPEN_STATES = (None, "pending", "accepted", "fulfilling", "on_hold", "needing_action", "unknown")
_CLIENTS = {}


class NotConfigured(PermanentRemoteError):
    pass


# -- settings, client, connection state ---------------------------------------------------------

def config():
    return plugin_host().get(PLUGIN).config()


def client():
    """The client for the saved settings; one per app and settings, so tokens are reused."""
    cfg = config()
    missing = [label for key, label in REQUIRED_SETTINGS if not cfg.get(key)]
    if missing:
        raise NotConfigured("WineDirect is not set up yet: enter " + ", ".join(missing) +
                            " in the WineDirect settings.")
    app = current_app._get_current_object()
    key = (id(app), cfg["api_url"], cfg["username"], cfg["password"], cfg["account_number"], cfg["supplier_id"])
    found = _CLIENTS.get(key)
    if found is None:
        found = WineDirectClient(cfg["api_url"], username=cfg["username"], password=cfg["password"],
                                 account_number=cfg["account_number"], supplier_id=cfg["supplier_id"],
                                 timeout=app.config.get("WINEDIRECT_HTTP_TIMEOUT", DEFAULT_TIMEOUT))
        _CLIENTS[key] = found
    return found


def record(object_type, object_id, create=False):
    found = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == object_type, SyncRecord.object_id == object_id))
    if found is None and create:
        found = SyncRecord(plugin=PLUGIN, object_type=object_type, object_id=object_id, status="pending", data={})
        db.session.add(found)
        db.session.flush()
    return found


def connection_record():
    return record("connection", 0, create=True)


def _now_text():
    return utcnow().strftime("%Y-%m-%d %H:%M:%S")


def _set_state(rec, state, message):
    data = dict(rec.data or {})
    history = list(data.get("history") or [])
    if not history or history[-1]["state"] != state:
        history.append({"state": state, "at": _now_text(), "message": (message or "")[:300]})
    data.update(state=state, message=(message or "")[:500], checked_at=_now_text(), history=history[-20:])
    rec.data = data
    rec.status = "synced" if state == "connected" else "failed"
    rec.message = (message or "")[:2000] or None


def note_connection(cl, *, ok, message, refreshes_before, auth_error=None):
    rec = connection_record()
    if cl is not None and cl.token_refreshes > refreshes_before:
        _set_state(rec, "token_issue", "WineDirect refused the access token (expired); the plugin refreshed it.")
    if ok:
        _set_state(rec, "connected", message or "Connected")
    elif auth_error is not None and "freshly issued" in auth_error.message:
        _set_state(rec, "token_issue", message)
    else:
        _set_state(rec, "disconnected", message)


def connection_state():
    rec = record("connection", 0)
    data = (rec.data if rec else None) or {}
    return data.get("state") or "unknown", data.get("message") or "", data


def call(fn):
    """Run fn(client) with the session committed first; record the connection state after."""
    db.session.commit()
    cl = client()
    before = cl.token_refreshes
    try:
        result = fn(cl)
    except RemoteAuthError as exc:
        db.session.rollback()
        note_connection(cl, ok=False, message=exc.message, refreshes_before=before, auth_error=exc)
        db.session.commit()
        raise
    except TransientRemoteError:
        raise
    state, _, _ = connection_state()
    if state != "connected" or cl.token_refreshes > before:
        note_connection(cl, ok=True, message="Connected", refreshes_before=before)
    return result


# -- warehouses ---------------------------------------------------------------------------------

def wms_code(wd_code):
    return f"{WAREHOUSE_PREFIX}{wd_code}"


def wd_code(warehouse):
    if warehouse is None or not warehouse.code.startswith(WAREHOUSE_PREFIX):
        return None
    code = warehouse.code[len(WAREHOUSE_PREFIX):]
    return code if code in c.WAREHOUSES else None


def winedirect_warehouses():
    found = db.session.scalars(select(Warehouse).where(Warehouse.code.like(f"{WAREHOUSE_PREFIX}%"))
                               .order_by(Warehouse.code)).all()
    return [w for w in found if wd_code(w)]


def stock_bin(warehouse):
    return next((loc for loc in warehouse.locations if loc.code == STOCK_BIN
                 and loc.usage == LocationUsage.INTERNAL.value), None)


def set_up_warehouses(remote):
    """Create each WineDirect warehouse (a list of client Warehouse) as an external WMS warehouse with
    a WineDirect shipping process; idempotent. Returns (created, completed) code lists."""
    created, completed = [], []
    for item in remote:
        code = wms_code(item.code)
        warehouse = db.session.scalar(select(Warehouse).where(Warehouse.code == code))
        if warehouse is None:
            address = ", ".join(p for p in (item.city, item.state) if p)
            warehouse = catalog.create_warehouse(code, f"WineDirect {item.name}", is_external=True, address=address)
            created.append(code)
        elif not warehouse.is_external or not any(p.handler == PLUGIN for p in warehouse.shipping_processes) \
                or stock_bin(warehouse) is None:
            completed.append(code)
        warehouse.is_external = True
        if stock_bin(warehouse) is None:
            catalog.create_location(warehouse, STOCK_BIN, "WineDirect stock")
        if not any(p.handler == PLUGIN for p in warehouse.shipping_processes):
            name = PROCESS_NAME if not any(p.name == PROCESS_NAME for p in warehouse.shipping_processes) \
                else f"{PROCESS_NAME} fulfillment"
            catalog.create_shipping_process(warehouse, name, handler=PLUGIN)
    db.session.flush()
    return created, completed


# -- orders: submission -------------------------------------------------------------------------

def _handled(order):
    process = order.shipping_process
    return process is not None and process.handler == PLUGIN


def queue_order(order, force=False):
    """Record that the order is to be submitted and emit the job (once per order)."""
    rec = record("order", order.id, create=True)
    data = dict(rec.data or {})
    if data.get("stage") == "submitted" and not force:
        return rec
    rec.status, rec.message, rec.remote_reference = "pending", "Waiting to be submitted to WineDirect.", None
    data["stage"] = "queued"
    data["queued_at"] = _now_text()
    rec.data = data
    key = f"winedirect:submit:{order.id}" + (f":{rec.attempts}" if force else "")
    outbox.emit("winedirect.submit_orders", {"order_id": order.id}, dedupe_key=key)
    return rec


def _split_name(full):
    parts = (full or "").strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0] or None)


def service_level(order, cfg):
    if order.is_pickup:
        return "WILLCALL"
    method = (order.shipping_method or "").strip()
    if method.upper() in c.SERVICE_LEVELS:
        return method.upper()
    lowered = method.lower()
    if "overnight" in lowered or "next day" in lowered:
        return "UPSOVERNIGHT"
    if "2" in lowered and "day" in lowered or "two day" in lowered:
        return "UPS2DAY"
    if "will call" in lowered or "pickup" in lowered:
        return "WILLCALL"
    return cfg.get("default_shipping_method") or "UPSGROUND"


def submission_problems(order):
    problems = []
    for label, value in (("ship-to address", order.ship_address1), ("ship-to city", order.ship_city),
                         ("ship-to state", order.ship_state), ("ship-to postal code", order.ship_postal_code),
                         ("ship-to name", order.ship_name or order.customer_name)):
        if not (value or "").strip():
            problems.append(label)
    if not order.lines:
        problems.append("order lines")
    if any(not (line.sku or "").strip() for line in order.lines):
        problems.append("a SKU on every line")
    return problems


def submission(order, cfg):
    first, last = _split_name(order.ship_name or order.customer_name)
    ship_to = Address(first_name=first, last_name=last, address1=order.ship_address1 or None,
                      address2=order.ship_address2 or None, city=order.ship_city or None,
                      state=order.ship_state or None, postal_code=order.ship_postal_code or None,
                      country=order.ship_country or "US")
    ship_date = order.requested_ship_date if order.requested_ship_date and order.requested_ship_date > date.today() \
        else None
    return OrderSubmission(
        order_number=order.number, ship_to=ship_to,
        lines=[OrderLine(line.sku, line.quantity, line.unit_price) for line in order.lines],
        club=bool(order.is_club or order.channel == "club"), service_level=service_level(order, cfg),
        requested_ship_date=ship_date,
        warehouse_code=wd_code(order.warehouse) or cfg.get("default_warehouse") or None,
        is_on_site_purchase=order.channel == "pos",
        packing_slip_code=(cfg.get("packing_slip_template") or None),
        shipping_instructions=(order.note or None) and order.note[:1000],
    )


def _claimed_stale(rec):
    data = rec.data or {}
    return data.get("stage") == "submitting" and rec.updated_at is not None and \
        rec.updated_at < utcnow() - STALE_CLAIM


def submit_orders_job(payload):
    """Submit this order, with up to 99 other queued ones in the same batch. Safe to run twice:
    orders are claimed before the call, and the client looks every number up before submitting."""
    order = db.session.get(Order, payload["order_id"])
    rec = record("order", payload["order_id"])
    if order is None or rec is None:
        return
    stage = (rec.data or {}).get("stage")
    if stage == "submitted" or rec.status == "voided":
        return
    if order.status == "cancelled":
        rec.status, rec.message = "voided", "Cancelled in the WMS before it was submitted."
        return
    if not _handled(order):
        rec.status, rec.message = "not_required", "The order is no longer routed to WineDirect."
        return
    if stage == "submitting" and not _claimed_stale(rec):
        raise RemoteUnavailable(f"Order {order.number} is being submitted by another job; checking again later.")
    token = "B" + utcnow().strftime("%Y%m%d%H%M%S") + pysecrets.token_hex(3)
    others = db.session.scalars(select(SyncRecord.id).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == "order", SyncRecord.status == "pending",
        SyncRecord.remote_reference.is_(None), SyncRecord.id != rec.id).order_by(SyncRecord.id)
        .limit(BATCH_LIMIT - 1)).all()
    if stage == "submitting":  # a stale claim of a job that died: take it over (the check protects)
        rec.remote_reference = None
        db.session.flush()
    db.session.execute(update(SyncRecord).where(SyncRecord.id.in_([rec.id, *others]),
                                                SyncRecord.remote_reference.is_(None))
                       .values(remote_reference=token, updated_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    claimed = db.session.scalars(select(SyncRecord).where(SyncRecord.remote_reference == token)
                                 .execution_options(populate_existing=True)).all()
    cfg = config()
    batch, by_number = [], {}
    for item in claimed:
        target = db.session.get(Order, item.object_id)
        data = dict(item.data or {})
        data.update(stage="submitting", batch=token)
        item.data = data
        if target is None or target.status == "cancelled" or not _handled(target):
            item.remote_reference = None
            item.status = "voided" if target is not None and target.status == "cancelled" else "not_required"
            continue
        problems = submission_problems(target)
        if problems:
            item.remote_reference, item.status = None, "failed"
            item.message = "Not sent to WineDirect: missing " + ", ".join(problems) + "."
            item.data = {**data, "stage": "refused"}
            continue
        batch.append(submission(target, cfg))
        by_number[target.number] = (target, item)
    if not batch:
        return
    try:
        result = call(lambda cl: cl.submit_orders(batch, batch_number=token))
    except Exception:
        db.session.rollback()
        db.session.execute(update(SyncRecord).where(SyncRecord.remote_reference == token)
                           .values(remote_reference=None).execution_options(synchronize_session=False))
        for _, item in by_number.values():
            item = db.session.get(SyncRecord, item.id, populate_existing=True)
            data = dict(item.data or {})
            data["stage"] = "queued"
            item.data = data
        db.session.commit()
        raise
    for number in result.submitted:
        target, item = by_number[number]
        _mark_submitted(target, item, token, f"Submitted to WineDirect in batch {token}; waiting for WineDirect "
                                             "to accept it (this can take up to 15 minutes).")
    for number, header in result.already_present.items():
        target, item = by_number[number]
        _mark_submitted(target, item, header.batch_number or token,
                        "WineDirect already had this order (not submitted again).")
        _apply_header(item, header)


def _mark_submitted(order, rec, batch, message):
    data = dict(rec.data or {})
    data.update(stage="submitted", batch=batch, submitted_at=_now_text())
    rec.data = data
    rec.status, rec.message, rec.attempts = "pending", message, rec.attempts + 1
    rec.remote_reference = batch
    outbox.emit("winedirect.order_status", {"order_id": order.id}, dedupe_key=f"winedirect:status:{order.id}:{batch}")


def _apply_header(rec, header):
    data = dict(rec.data or {})
    data.update(state=header.state, status_code=header.status_code, status_name=header.status_name,
                wd_number=header.wine_direct_order_number, batch=header.batch_number or data.get("batch"))
    rec.data = data
    rec.remote_reference = header.wine_direct_order_number


# -- orders: status and shipments ---------------------------------------------------------------

def order_status_job(payload):
    order = db.session.get(Order, payload["order_id"])
    rec = record("order", payload["order_id"])
    if order is None or rec is None or (rec.data or {}).get("stage") != "submitted":
        return
    refresh_order(order, rec, retry_missing=True)


def refresh_order(order, rec, retry_missing=False):
    """Read the order's status (and shipments) from WineDirect and apply it. Returns the OrderStatus."""
    number = order.number
    def read(cl):
        found = cl.get_order_status(number, include_shipments=False)
        if found.state in SHIPPED_STATES:  # only then is there a shipment to read
            found.shipments = cl.list_shipments(order_number=number)
        return found

    try:
        status = call(read)
    except RemoteRejected as exc:
        if exc.code == "not_found" and retry_missing:
            raise RemoteUnavailable(exc.message) from exc
        raise
    rec = db.session.get(SyncRecord, rec.id)
    order = db.session.get(Order, order.id)
    apply_status(order, rec, status)
    return status


def apply_status(order, rec, status):
    data = dict(rec.data or {})
    data.update(state=status.state, status_code=status.status_code, status_name=status.status_name,
                wd_number=status.wine_direct_order_number, reason=status.reason, holds=status.holds,
                messages=status.messages[-5:], is_cancellable=status.is_cancellable,
                requested_ship_date=status.requested_ship_date.isoformat() if status.requested_ship_date else None,
                checked_at=_now_text())
    rec.data = data
    rec.remote_reference = status.wine_direct_order_number
    rec.synced_at = utcnow()
    if status.state in ("needing_action", "on_hold"):
        rec.status = "failed"
        rec.message = f"WineDirect: {status.status_name}: {status.reason or 'no reason given'}"
    elif status.state == "cancelled":
        rec.status, rec.message = "voided", "Cancelled at WineDirect."
    elif status.state == "pending":
        rec.status = "pending"
        rec.message = f"WineDirect: {status.status_name or status.status_code} (received, not yet checked)"
    else:
        rec.status = "synced"
        rec.message = f"WineDirect: {status.status_name or status.status_code}"
    for shipment in status.shipments:
        record_shipment(order, shipment.shipment_id, carrier=shipment.carrier_name or shipment.carrier_code,
                        tracking_number=shipment.tracking_number, tracking_url=shipment.tracking_url,
                        state=shipment.state, delivered_at=shipment.delivered_at)
    db.session.flush()


def _naive(moment):
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def record_shipment(order, shipment_id, *, carrier, tracking_number, tracking_url, state, delivered_at=None):
    """Record a WineDirect shipment in the WMS (once), or move its status on."""
    if state not in SHIPPED_STATES:
        return None
    existing = db.session.scalar(select(Shipment).where(Shipment.source == PLUGIN,
                                                        Shipment.remote_reference == str(shipment_id)))
    if existing is not None:
        if existing.status != state:
            orders.set_shipment_status(existing, state, delivered_at=_naive(delivered_at))
        return existing
    if order.status in ("shipped", "cancelled"):
        return None
    _cover_shipped_units(order)
    if order.status == "on_hold":
        orders.release_hold(order)
    shipment = orders.ship(order, carrier=carrier or "WineDirect", tracking_number=tracking_number or "",
                           tracking_url=tracking_url or "", source=PLUGIN, remote_reference=str(shipment_id),
                           auto_pick=True, status=state)
    if state == "delivered":
        shipment.delivered_at = _naive(delivered_at) or utcnow()
    rec = record("order", order.id)
    if rec is not None:
        data = dict(rec.data or {})
        data["shipment_id"] = str(shipment_id)
        rec.data = data
    return shipment


def _cover_shipped_units(order):
    """WineDirect shipped these units, so they were in its warehouse: when the WMS copy of its stock is
    behind (inventory not synced yet), bring the bin up with a sync movement before recording the ship."""
    location = stock_bin(order.warehouse) if order.warehouse is not None else None
    if location is None or not order.warehouse.is_external:
        return
    for line in order.lines:
        if line.product_id is None:
            continue
        needed = line.quantity - line.quantity_shipped - line.quantity_picked
        have = inventory.current_location_on_hand(line.product_id, location.id)
        if needed > 0 and have < needed:
            inventory.set_on_hand(line.product, location, needed, reference=f"winedirect:shipment:{order.number}")


def _winedirect_order(number):
    return db.session.scalar(select(Order).join(SyncRecord, (SyncRecord.object_id == Order.id) & (
        SyncRecord.plugin == PLUGIN) & (SyncRecord.object_type == "order")).where(Order.number == number)
        .order_by(Order.id.desc()))


def sync_shipments_job(payload=None):
    """Shipment events since the last sync become WMS shipments and statuses; orders WineDirect has not
    confirmed yet get their status read."""
    conn = connection_record()
    data = dict(conn.data or {})
    until = datetime.now(timezone.utc)
    since_text = data.get("shipments_synced_until")
    since = datetime.fromisoformat(since_text) - timedelta(minutes=2) if since_text else until - timedelta(days=30)
    updates = call(lambda cl: cl.list_shipment_updates(since, until + timedelta(minutes=1)))
    recorded = 0
    for item in updates:
        order = _winedirect_order(item.order_number) if item.order_number else None
        if order is None:
            continue
        delivered = None
        if item.state == "delivered" and item.events:
            delivered = max(e.at for e in item.events if e.at)
        record_shipment(order, item.shipment_id, carrier=item.carrier_name, tracking_number=item.tracking_number,
                        tracking_url=item.tracking_url, state=item.state, delivered_at=delivered)
        recorded += 1
    conn = connection_record()
    data = dict(conn.data or {})
    data["shipments_synced_until"] = until.isoformat()
    data["shipments_synced_at"] = _now_text()
    conn.data = data
    refreshed = 0
    waiting = db.session.scalars(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == "order",
        SyncRecord.status == "pending").order_by(SyncRecord.id).limit(500)).all()
    for rec in waiting:
        info = rec.data or {}
        if info.get("stage") != "submitted" or info.get("state") not in ("pending", None):
            continue
        order = db.session.get(Order, rec.object_id)
        if order is None:
            continue
        try:
            refresh_order(order, rec)
            refreshed += 1
        except RemoteRejected:
            continue
    return recorded, refreshed


def cancel_at_winedirect(order):
    """Cancel the order at WineDirect. Returns (ok, message)."""
    rec = record("order", order.id)
    shipped = [s for s in order.shipments if s.source == PLUGIN]
    if shipped:
        first = shipped[0]
        return False, (f"WineDirect shipped this order on {first.shipped_at:%Y-%m-%d} ({first.carrier} "
                       f"{first.tracking_number}); a shipped order cannot be cancelled.")
    if rec is None or (rec.data or {}).get("stage") != "submitted":
        return True, "The order had not been submitted to WineDirect."
    number = order.number
    try:
        call(lambda cl: cl.cancel_order(number))
    except RemoteRejected as exc:
        if exc.code == "not_found":
            return False, exc.message
        rec = record("order", order.id)
        state = (rec.data or {}).get("status_name")
        return False, exc.message + (f" (WineDirect status: {state})" if state else "")
    rec = record("order", order.id)
    data = dict(rec.data or {})
    data.update(state="cancelled", status_code=c.STATUS_CANCELLED, status_name="Cancelled", is_cancellable=False)
    rec.data = data
    rec.status, rec.message = "voided", "Cancelled at WineDirect."
    return True, "Cancelled at WineDirect."


def cancel_order_job(payload):
    """The order was cancelled in the WMS: cancel it at WineDirect too."""
    order = db.session.get(Order, payload["order_id"])
    rec = record("order", payload["order_id"])
    if order is None or rec is None or rec.status == "voided":
        return
    ok, message = cancel_at_winedirect(order)
    rec = record("order", order.id)
    if not ok:
        rec.status = "failed"
        rec.message = f"Cancelled in the WMS, but WineDirect refused the cancellation: {message}"
    elif rec.status != "voided":
        rec.status, rec.message = "voided", message


# -- inventory ----------------------------------------------------------------------------------

def sync_inventory_job(payload=None):
    """Shipments first (so shipped units leave through ship movements), then each WineDirect
    warehouse's on hand becomes sync movements into its STOCK bin."""
    sync_shipments_job()
    warehouses = [(w.id, wd_code(w)) for w in winedirect_warehouses()]
    tracked, changed, unknown = 0, 0, set()
    summary = []
    for warehouse_id, code in warehouses:
        rows = call(lambda cl: cl.get_inventory(code))
        warehouse = db.session.get(Warehouse, warehouse_id)
        location = stock_bin(warehouse)
        if location is None:
            continue
        totals = {}
        for row in rows:
            totals[row.sku] = totals.get(row.sku, 0) + row.on_hand
        products = {p.sku: p for p in db.session.scalars(select(Product).where(Product.sku.in_(list(totals))))} \
            if totals else {}
        for sku, on_hand in sorted(totals.items()):
            product = products.get(sku)
            if product is None:
                unknown.add(sku)
                continue
            tracked += 1
            if inventory.set_on_hand(product, location, on_hand, reference=f"winedirect:inventory:{code}"):
                changed += 1
        held = db.session.scalars(select(WarehouseLevel).where(WarehouseLevel.warehouse_id == warehouse_id,
                                                               WarehouseLevel.on_hand > 0)).all()
        for level in held:
            product = db.session.get(Product, level.product_id)
            if product.sku not in totals and inventory.current_location_on_hand(product.id, location.id) > 0:
                inventory.set_on_hand(product, location, 0, reference=f"winedirect:inventory:{code}")
                changed += 1
        summary.append({"code": code, "skus": len(totals)})
    conn = connection_record()
    data = dict(conn.data or {})
    data.update(inventory_synced_at=_now_text(), inventory_tracked=tracked, inventory_changed=changed,
                inventory_unknown_skus=sorted(unknown)[:50], inventory_warehouses=summary)
    conn.data = data
    return tracked, changed


def availability(product_id, warehouse_id):
    level = db.session.get(WarehouseLevel, (product_id, warehouse_id))
    if level is None:
        return 0, 0, 0
    return level.on_hand, level.committed, level.on_hand - level.committed


# -- products -----------------------------------------------------------------------------------

def product_problems(product):
    missing = []
    sku = (product.sku or "").strip()
    if len(sku) < 2 or " " in sku:
        missing.append("a valid SKU (2 characters or more, no spaces)")
    if not (product.brand or "").strip():
        missing.append("brand")
    if not (product.name or "").strip():
        missing.append("name")
    if not (product.appellation or "").strip():
        missing.append("appellation")
    if not product.bottle_size_ml:
        missing.append("bottle size")
    if not product.case_quantity:
        missing.append("case quantity")
    if product.retail_price is None or product.retail_price <= 0:
        missing.append("retail price")
    if product.alcohol_pct is None or not 0 < product.alcohol_pct < 100:
        missing.append("alcohol %")
    return missing


def wine_product(product):
    text = f"{product.varietal} {product.name}".lower()
    kind = "SPARKLING" if any(w in text for w in ("sparkling", "champagne", "brut", "cava", "prosecco")) else "STILL"
    return WineProduct(sku=product.sku.strip(), brand=product.brand.strip(), name=product.name.strip(),
                       varietal=(product.varietal or "").strip() or None, appellation=product.appellation.strip(),
                       bottle_size_ml=product.bottle_size_ml, case_quantity=product.case_quantity,
                       retail_price=product.retail_price, alcohol_percent=product.alcohol_pct, alcohol_type=kind,
                       vintage=str(product.vintage) if product.vintage else None)


def _request_tag(product, rec, tag):
    data = dict(rec.data or {})
    if data.get("tag") == tag:
        return
    data["tag"] = tag
    data["tag_serial"] = data.get("tag_serial", 0) + 1
    rec.data = data
    outbox.emit("product.tag_requested", {"product_id": product.id, "tags": [tag],
                                          "remove_tags": [t for t in TAGS.values() if t != tag], "source": PLUGIN},
                dedupe_key=f"winedirect:tag:{product.id}:{data['tag_serial']}")


def sync_product(product):
    """Create or update one product at WineDirect. Returns its SyncRecord."""
    rec = record("product", product.id, create=True)
    missing = product_problems(product)
    if missing:
        rec.status = "failed"
        rec.message = "Not sent to WineDirect: missing " + ", ".join(missing) + "."
        _request_tag(product, rec, TAGS["missing"])
        return rec
    wine = wine_product(product)
    product_id, rec_id = product.id, rec.id
    try:
        result = call(lambda cl: cl.upsert_product(wine))
    except RemoteRejected as exc:
        rec, product = db.session.get(SyncRecord, rec_id), db.session.get(Product, product_id)
        rec.status, rec.message = "failed", exc.message
        _request_tag(product, rec, TAGS["error"])
        return rec
    rec, product = db.session.get(SyncRecord, rec_id), db.session.get(Product, product_id)
    data = dict(rec.data or {})
    data["sent"] = {"SKU": wine.sku, "Brand": wine.brand, "Name": wine.name, "Varietal": wine.varietal or "",
                    "Appellation": wine.appellation, "Bottle size (ml)": wine.bottle_size_ml,
                    "Case quantity": wine.case_quantity, "Retail price": str(wine.retail_price),
                    "Alcohol %": str(wine.alcohol_percent), "Alcohol type": wine.alcohol_type,
                    "Vintage": wine.vintage or ""}
    data["action"] = result.action
    rec.data = data
    rec.status, rec.synced_at = "synced", utcnow()
    rec.remote_reference = result.wine_direct_sku or rec.remote_reference
    rec.message = {"created": "Created at WineDirect.", "updated": "Updated at WineDirect.",
                   "unchanged": "WineDirect already had these attributes."}.get(result.action, result.action)
    _request_tag(product, rec, TAGS["synced"])
    return rec


def sync_products_job(payload=None):
    ids = (payload or {}).get("product_ids")
    query = select(Product.id).order_by(Product.id)
    query = query.where(Product.id.in_(ids)) if ids else query.where(Product.is_active)
    counts = {"synced": 0, "failed": 0}
    for product_id in db.session.scalars(query).all():
        rec = sync_product(db.session.get(Product, product_id))
        counts["synced" if rec.status == "synced" else "failed"] += 1
    return counts


# -- panels -------------------------------------------------------------------------------------

def portal_url(path):
    return c.PORTAL_URL + path


def order_panel_context(order):
    rec = record("order", order.id)
    if rec is None and not _handled(order):
        return None
    data = (rec.data if rec else None) or {}
    lines = []
    for line in order.lines:
        on_hand, committed, available = availability(line.product_id, order.warehouse_id) \
            if line.product_id and order.warehouse_id else (0, 0, 0)
        lines.append({"sku": line.sku, "quantity": line.quantity, "on_hand": on_hand, "committed": committed,
                      "available": available})
    shipments = [s for s in order.shipments if s.source == PLUGIN]
    wd_number = data.get("wd_number")
    return {"order": order, "rec": rec, "data": data, "lines": lines, "shipments": shipments,
            "warehouse_code": wd_code(order.warehouse), "can_cancel": not shipments and not order.is_closed,
            "view_url": portal_url(c.PORTAL_ORDER_PATH.format(wine_direct_order_number=wd_number))
            if wd_number else None}


def product_panel_context(product):
    rec = record("product", product.id)
    levels = []
    for warehouse in winedirect_warehouses():
        on_hand, committed, available = availability(product.id, warehouse.id)
        levels.append({"code": wd_code(warehouse), "name": warehouse.name, "on_hand": on_hand,
                       "committed": committed, "available": available})
    cfg = config()
    return {"product": product, "rec": rec, "data": (rec.data if rec else None) or {}, "levels": levels,
            "missing": product_problems(product), "supplier": cfg.get("supplier_name") or cfg.get("supplier_id"),
            "view_url": portal_url(c.PORTAL_PRODUCT_PATH.format(sku=product.sku))}


def require_configured():
    try:
        client()
    except NotConfigured as exc:
        raise ServiceError("not_configured", exc.message)
