"""Shopify returns as expected returns in the WMS (store setting `return_sync`).

A returns/* webhook (or `import_returns_for_order` during reconciliation) re-reads the order's returns
from Shopify, so deliveries in any order end in the same state. An open return becomes a SyncRecord
(object_type "shopify_return", remote_reference = the return's gid) holding its lines mapped to WMS
products and linked to the WMS order. An operator receives it on the Returns page: one return
movement per line into a bin of the order's warehouse (idempotency key per line), then the
`shopify.close_return` job closes the return in Shopify, and the order too with `auto_close`.

Record status: pending (expected, or received and closing), synced (closed in Shopify), failed
(closing failed; Retry on the page), voided (declined, cancelled or closed in Shopify before it was
received). `data["stage"]` is expected, received or closed.
"""

import hashlib

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import Location, Order, Product
from wms.core.models._base import utcnow
from wms.core.services import inventory
from wms.extensions import db
from wms.integrations.errors import RemoteError, RemoteRejected
from wms.plugins.models import Store, SyncRecord

from .client import to_gid

PLUGIN = "shopify"
RECORD_TYPE = "shopify_return"
CLOSE_TOPIC = "shopify.close_return"
OPEN_STATUSES = ("REQUESTED", "OPEN")
MAX_OBJECT_ID = 2 ** 31 - 1


class OrderNotImported(Exception):
    """The return's order is not in the WMS (yet): the job is retried with backoff, then listed as failed."""


# -- expected returns in -------------------------------------------------------------------------------
def handle_webhook(store, topic, payload):
    """returns/request, approve, decline, close, ...: bring the expected return up to date."""
    if not store.setting("return_sync"):
        return None
    order_ref = payload.get("order") or {}
    order = wms_order(store, order_ref.get("admin_graphql_api_id") or order_ref.get("id"))
    if order is None:
        name = payload.get("name") or payload.get("id")
        raise OrderNotImported(f"Shopify order {order_ref.get('id')} of return {name} "
                               "is not in the WMS (not imported yet, or filtered out by the store's order filters).")
    return_gid = payload.get("admin_graphql_api_id") or to_gid("Return", payload["id"])
    for remote in _client(store).returns_of_order(order.remote_id):
        if remote["id"] == return_gid:
            return upsert(store, order, remote)
    return None


def import_returns_for_order(store, order):
    """Record the open Shopify returns of `order` not known yet (reconciliation). Returns how many."""
    if not store.setting("return_sync") or not order.remote_id:
        return 0
    added = 0
    for remote in _client(store).returns_of_order(order.remote_id):
        if find(store, remote["id"]) is None and upsert(store, order, remote) is not None:
            added += 1
    return added


def upsert(store, order, remote):
    """Create or update the expected return for `remote` (a dict of client.returns_of_order)."""
    record = find(store, remote["id"])
    if record is None:
        if remote["status"] not in OPEN_STATUSES:
            return None  # closed or declined before the WMS heard of it: nothing to expect
        return _create(store, order, remote)
    data = dict(record.data or {}, shopify_status=remote["status"])
    if data.get("stage") == "expected" and remote["status"] in OPEN_STATUSES:
        data["lines"] = expected_lines(order, remote["line_items"])
    elif data.get("stage") == "expected":
        record.status = "voided"
        record.message = f"{remote['status'].title()} in Shopify before it was received."
    record.data = data
    db.session.flush()
    return record


def find(store, return_gid):
    return db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == RECORD_TYPE, SyncRecord.store_id == store.id,
        SyncRecord.remote_reference == return_gid))


def _create(store, order, remote):
    data = {"stage": "expected", "order_id": order.id, "order_number": order.number,
            "order_remote_id": order.remote_id, "return_name": remote["name"], "shopify_status": remote["status"],
            "requested_at": remote["created_at"], "lines": expected_lines(order, remote["line_items"])}
    object_id = _free_object_id(store, remote["id"])
    if isinstance(object_id, SyncRecord):
        return object_id
    record = SyncRecord(plugin=PLUGIN, store_id=store.id, object_type=RECORD_TYPE, object_id=object_id,
                        status="pending", remote_reference=remote["id"], data=data,
                        message=_missing_products_message(data["lines"]))
    try:
        with db.session.begin_nested():
            db.session.add(record)
    except IntegrityError:
        return find(store, remote["id"])  # a duplicate delivery recorded it a moment ago
    return record


def _free_object_id(store, return_gid):
    """A 31-bit object_id derived from the return, or the record that holds this return already.

    Shopify ids do not fit SyncRecord.object_id (32 bits on PostgreSQL), so the id is a hash; two
    concurrent deliveries of one return compute the same id and the unique constraint keeps one.
    A collision with another return moves on to the next free number."""
    digest = hashlib.sha256(f"{store.id}:{return_gid}".encode()).digest()
    object_id = int.from_bytes(digest[:4], "big") % MAX_OBJECT_ID + 1
    while True:
        taken = db.session.scalar(select(SyncRecord).where(
            SyncRecord.plugin == PLUGIN, SyncRecord.object_type == RECORD_TYPE, SyncRecord.object_id == object_id))
        if taken is None:
            return object_id
        if taken.store_id == store.id and taken.remote_reference == return_gid:
            return taken
        object_id = object_id % MAX_OBJECT_ID + 1


def expected_lines(order, remote_lines):
    """The return's lines with the WMS product each one brings back (None when the SKU is unknown)."""
    by_remote_line = {_numeric(line.remote_line_id): line for line in order.lines if line.remote_line_id}
    lines = []
    for remote in remote_lines:
        order_line = by_remote_line.get(_numeric(remote["line_item_id"]))
        product_id = order_line.product_id if order_line is not None else None
        if product_id is None and remote.get("sku"):
            product_id = _product_id_by_sku(remote["sku"])
        lines.append({"id": remote["id"], "line_item_id": remote["line_item_id"], "sku": remote.get("sku") or "",
                      "quantity": remote["quantity"], "reason": remote.get("reason"), "product_id": product_id,
                      "name": order_line.name if order_line is not None else ""})
    return lines


def _product_id_by_sku(sku):
    return db.session.scalar(select(Product.id).where(or_(Product.sku == sku, func.lower(Product.sku) == sku.lower())))


def _missing_products_message(lines):
    unknown = [line["sku"] or "(no SKU)" for line in lines if line["product_id"] is None]
    if not unknown:
        return None
    return f"Not a WMS product: {', '.join(unknown)}. Add the product (or run Sync Products) before receiving."


def wms_order(store, remote_id):
    """The WMS order of a Shopify order id (numeric or gid), whichever way it was stored."""
    if not remote_id:
        return None
    numeric = _numeric(remote_id)
    return db.session.scalar(select(Order).where(
        Order.store_id == store.id, Order.remote_id.in_([numeric, to_gid("Order", numeric)])))


def _numeric(remote_id):
    return str(remote_id).rsplit("/", 1)[-1]


# -- receiving -------------------------------------------------------------------------------------------
def receivable_locations(record):
    """The bins of the order's warehouse an operator may receive the return into."""
    order = db.session.get(Order, (record.data or {}).get("order_id"))
    if order is None or order.warehouse is None:
        return []
    return [loc for loc in order.warehouse.locations if loc.is_tracked and loc.is_active]


def receive(record, location, user=None):
    """Restock every line of the expected return into `location`, then queue the close in Shopify.

    Raises ServiceError and writes nothing when the return cannot be received. The caller commits."""
    data = record.data or {}
    if record.status == "voided":
        raise ServiceError("return_voided", f"Return {data.get('return_name')} is no longer expected: "
                           f"{record.message or 'voided'}")
    if data.get("stage") != "expected":
        raise ServiceError("already_received", f"Return {data.get('return_name')} was received already "
                           f"({data.get('received_at')} UTC).")
    order = db.session.get(Order, data.get("order_id"))
    if location is None or order is None or location not in receivable_locations(record):
        raise ServiceError("bad_location", "Choose a bin of the order's warehouse "
                           f"({order.warehouse.code if order and order.warehouse else 'none'}).", field="location")
    missing = _missing_products_message(data["lines"])
    if missing:
        raise ServiceError("unknown_product", missing)
    movements = []
    for line in data["lines"]:
        movement = inventory.receive_return(
            db.session.get(Product, line["product_id"]), location, line["quantity"], user=user,
            reference=f"Shopify return {data['return_name']} (order {order.number})",
            idempotency_key=f"shopify:return:{record.id}:{_numeric(line['id'])}")
        movements.append(movement.id)
    record.data = dict(data, stage="received", received_at=utcnow().strftime("%Y-%m-%d %H:%M:%S"),
                       received_by=getattr(user, "email", None), location_id=location.id,
                       location_label=location.label, movement_ids=movements)
    record.message = "Received; closing the return in Shopify."
    _queue_close(record)
    return movements


def retry_close(record):
    """A person's Retry after a failed close. The caller commits."""
    if (record.data or {}).get("stage") != "received" or record.status != "failed":
        raise ServiceError("nothing_to_retry", "Only a received return whose closing failed can be retried.")
    record.status, record.attempts = "pending", record.attempts + 1
    record.message = "Received; closing the return in Shopify (retry)."
    _queue_close(record)


def _queue_close(record):
    outbox.emit(CLOSE_TOPIC, {"record_id": record.id},
                dedupe_key=f"shopify:return:{record.id}:close:{record.attempts}")


# -- closing in Shopify ---------------------------------------------------------------------------------
def close_job(payload):
    """Close the received return in Shopify (approving a still-requested one first); with `auto_close`,
    close the order too. Reads the return's state first, so running twice ends the same."""
    record = db.session.get(SyncRecord, payload["record_id"])
    if record is None or (record.data or {}).get("stage") != "received":
        return
    store = db.session.get(Store, record.store_id)
    try:
        closed_order = _close_in_shopify(store, record)
    except Exception as exc:
        db.session.rollback()
        record = db.session.get(SyncRecord, payload["record_id"])
        text = exc.message if isinstance(exc, RemoteError) else f"{exc.__class__.__name__}: {exc}"
        record.status, record.message = "failed", f"Closing in Shopify failed: {text}"[:2000]
        db.session.commit()
        raise
    record.status, record.synced_at = "synced", utcnow()
    record.data = dict(record.data, stage="closed", shopify_status="CLOSED", order_closed=closed_order)
    record.message = "Closed in Shopify" + (", and the order too." if closed_order else ".")


def _close_in_shopify(store, record):
    client = _client(store)
    data = record.data
    remote = next((r for r in client.returns_of_order(data["order_remote_id"]) if r["id"] == record.remote_reference),
                  None)
    if remote is None:
        raise RemoteRejected(f"Shopify no longer has return {data['return_name']}.", code="NOT_FOUND")
    if remote["status"] == "REQUESTED":
        client.approve_return(remote["id"])
        remote["status"] = "OPEN"
    if remote["status"] == "OPEN":
        client.close_return(remote["id"])
    elif remote["status"] != "CLOSED":
        raise RemoteRejected(f"Return {data['return_name']} is {remote['status'].lower()} in Shopify and cannot "
                             "be closed; the stock is in the WMS.", code="INVALID_STATE")
    if store.setting("auto_close"):
        client.close_order(data["order_remote_id"])
        return True
    return False


JOB_HANDLERS = {CLOSE_TOPIC: close_job}


# -- the Returns page -------------------------------------------------------------------------------------
def records_of(store, include_done=False, limit=200):
    query = select(SyncRecord).where(SyncRecord.plugin == PLUGIN, SyncRecord.object_type == RECORD_TYPE,
                                     SyncRecord.store_id == store.id)
    if not include_done:
        query = query.where(SyncRecord.status.in_(("pending", "failed")))
    return db.session.scalars(query.order_by(SyncRecord.id.desc()).limit(limit)).all()


def location_by_id(location_id):
    return db.session.get(Location, location_id) if location_id else None


def _client(store):
    from .connection import client_for
    return client_for(store)
