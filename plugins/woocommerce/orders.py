"""Orders both ways, tracking back, and tags.

In: paid orders (the store's order statuses, processing and completed by default) arrive by signed
webhook and by a `modified_after` poll, since WooCommerce never retries a failed delivery. Both
end in `import_order`, which creates the WMS order once per WooCommerce order (unknown SKUs hold),
cancels it when WooCommerce cancels, and ignores the orders the WMS mirrored into the store.

Out: with Mirror orders on, orders that came from elsewhere are created in WooCommerce as
`processing` (one SyncRecord `order@<store id>` each: pending, synced or failed with WooCommerce's
words). A retry first looks for the order it may have created already (meta `_wms_source_id`).
When the WMS cancels a mirrored order, its WooCommerce copy is cancelled too, so WooCommerce gives its
stock back and nobody ships it from there; an order cancelled before its mirror was made is never made.

Back: a shipment of a WooCommerce order (its own or mirrored) adds a customer note with the
tracking and completes the order; a retry does not add the note twice.
"""

import json
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from wms import outbox
from wms.core.models import Order, Shipment
from wms.core.models._base import utcnow
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.integrations.errors import PermanentRemoteError, RemoteError, TransientRemoteError
from wms.plugins.models import ProductMapping, Store, SyncRecord

from . import stock
from . import store as woo_store
from .client import PLUGIN

POLL_TOPIC = "woocommerce.poll_orders"
MIRROR_TOPIC = "woocommerce.mirror_order"
CANCEL_MIRROR_TOPIC = "woocommerce.cancel_mirror"
TRACKING_TOPIC = "woocommerce.push_tracking"
SOURCE_META = "_wms_source_id"
TAGS_META = "wms_tags"
CANCELLED_STATUSES = ("cancelled", "refunded", "failed")
POLL_OVERLAP = timedelta(minutes=2)     # re-read a little before the last poll: clocks and slow saves
LOOKUP_WINDOW = timedelta(minutes=30)   # how far back a retried mirror looks for the order it made


def object_type(kind, store):
    return f"{kind}@{store.id}"


def record_for(kind, store, object_id, create=True):
    record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == object_type(kind, store),
        SyncRecord.object_id == object_id))
    if record is None and create:
        record = SyncRecord(plugin=PLUGIN, store_id=store.id, object_type=object_type(kind, store),
                            object_id=object_id, status="pending", data={})
        db.session.add(record)
        db.session.flush()
    return record


def set_record(record, status, message=None, reference=None, **data):
    record.status, record.message = status, (message or None) and message[:2000]
    if reference is not None:
        record.remote_reference = str(reference)
    if status == "synced":
        record.synced_at = utcnow()
    record.data = {**(record.data or {}), **data}


# -- in --------------------------------------------------------------------------------------------

def is_our_mirror(woo_order):
    return any(m.get("key") == SOURCE_META for m in woo_order.get("meta_data") or [])


def order_details(woo_order):
    billing, shipping = woo_order.get("billing") or {}, woo_order.get("shipping") or {}
    name = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p)
    ship_name = " ".join(p for p in (shipping.get("first_name"), shipping.get("last_name")) if p) or name
    lines = woo_order.get("shipping_lines") or []
    return {"customer_name": name[:200], "customer_email": (billing.get("email") or "")[:255],
            "customer_phone": (billing.get("phone") or "")[:50], "ship_name": ship_name[:200],
            "ship_address1": (shipping.get("address_1") or billing.get("address_1") or "")[:255],
            "ship_address2": (shipping.get("address_2") or billing.get("address_2") or "")[:255],
            "ship_city": (shipping.get("city") or billing.get("city") or "")[:120],
            "ship_state": (shipping.get("state") or billing.get("state") or "")[:10],
            "ship_postal_code": (shipping.get("postcode") or billing.get("postcode") or "")[:20],
            "ship_country": (shipping.get("country") or billing.get("country") or "US")[:2],
            "shipping_method": (lines[0].get("method_title", "") if lines else "")[:120],
            "note": (woo_order.get("customer_note") or "")[:1000], "financial_status": "paid"}


def order_lines(woo_order):
    lines = []
    for line in woo_order.get("line_items") or []:
        quantity = int(line.get("quantity") or 0)
        if quantity <= 0:
            continue
        unit = Decimal(str(line.get("total") or "0")) / quantity
        lines.append(order_service.LineInput(sku=(line.get("sku") or "").strip(), quantity=quantity,
                                             unit_price=unit.quantize(Decimal("0.01")),
                                             name=(line.get("name") or "")[:255],
                                             remote_line_id=str(line.get("id"))))
    return lines


def existing_order(store, woo_id):
    return db.session.scalar(select(Order).where(Order.store_id == store.id, Order.remote_id == str(woo_id)))


def import_order(store, woo_order):
    """Create, cancel or leave alone the WMS copy of one WooCommerce order. Returns what happened."""
    woo_id, status = woo_order.get("id"), woo_order.get("status")
    if woo_id is None or is_our_mirror(woo_order):
        return "ignored"
    order = existing_order(store, woo_id)
    if order is not None:
        if status in CANCELLED_STATUSES and not order.is_closed and not any(l.quantity_shipped for l in order.lines):
            released = {l.product_id: l.quantity_reserved for l in order.lines if l.product_id}
            order_service.cancel(order, reason=f"Cancelled in WooCommerce ({status}).")
            for product_id, units in released.items():
                stock.count_woo_applied(store, product_id, -units)
            return "cancelled"
        return "known"
    if status not in woo_store.order_statuses(store):
        return "filtered"
    location = store.default_location
    order = order_service.create_order(order_service.OrderInput(
        lines=order_lines(woo_order), number=f"#{woo_order.get('number') or woo_id}", source=PLUGIN,
        store_id=store.id, remote_id=str(woo_id), unknown_sku="hold",
        warehouse=location.warehouse if location else None,
        shipping_process=location.shipping_process if location else None,
        idempotency_key=f"woocommerce:{store.id}:{woo_id}", details=order_details(woo_order)))
    for line in order.lines:
        if line.product_id:
            stock.count_woo_applied(store, line.product_id, line.quantity_reserved)
    return "created"


def webhook_order(event):
    try:
        return json.loads(event.payload)
    except ValueError:
        return None


def handle_order_event(store, event):
    woo_order = webhook_order(event)
    if isinstance(woo_order, dict) and event.topic.startswith("order."):
        import_order(store, woo_order)


def poll_orders(store):
    """Every order modified since the last poll (a little before, to be safe) goes through import_order."""
    last = woo_store.parse_time(woo_store.state(store).get("orders_polled_until"))
    since = (last - POLL_OVERLAP) if last else utcnow() - timedelta(days=1)
    started = utcnow()
    client = woo_store.make_client(store)
    db.session.commit()
    counts = {}
    for woo_order in client.iter_orders(modified_after=since):
        outcome = import_order(store, woo_order)
        counts[outcome] = counts.get(outcome, 0) + 1
        db.session.commit()
    hooks = woo_store.refresh_webhooks(store)
    woo_store.save_state(store, orders_polled_until=started.isoformat(timespec="seconds"),
                         orders_polled_at=woo_store.now_text(), last_poll=counts)
    return counts, hooks


def poll_orders_job(payload):
    store = db.session.get(Store, payload["store_id"])
    if store is None or store.plugin != PLUGIN or store.status != "connected":
        return
    poll_orders(store)


# -- out (mirror) ----------------------------------------------------------------------------------

def mirror_stores(order):
    return [s for s in woo_store.woo_stores() if s.setting("mirror_orders") and s.id != order.store_id]


def queue_mirrors(order):
    for store in mirror_stores(order):
        record = record_for("order", store, order.id)
        if record.status != "synced":
            set_record(record, "pending", "Waiting to be created in WooCommerce.")
        outbox.emit(MIRROR_TOPIC, {"order_id": order.id, "store_id": store.id},
                    dedupe_key=f"{MIRROR_TOPIC}:{store.id}:{order.id}")


def mirror_lines(store, order):
    """WooCommerce line items by the mapped product ids; raises when a line is not in the store."""
    mappings = {m.product_id: m for m in db.session.scalars(select(ProductMapping).where(
        ProductMapping.store_id == store.id, ProductMapping.product_id.in_([l.product_id for l in order.lines])))}
    lines, missing = [], []
    for line in order.lines:
        mapping = mappings.get(line.product_id)
        if mapping is None:
            missing.append(line.sku or line.name)
            continue
        item = {"quantity": line.quantity, "total": str((line.unit_price * line.quantity).quantize(Decimal("0.01")))}
        if stock.is_variation(mapping):
            item.update(product_id=int(mapping.remote_product_id), variation_id=int(mapping.remote_variant_id))
        else:
            item["product_id"] = int(mapping.remote_variant_id)
        lines.append(item)
    if missing:
        raise PermanentRemoteError(f"Not in WooCommerce: {', '.join(missing)}. Sync products (or add them to the "
                                   "store), then retry.")
    return lines


def split_name(full):
    first, _, last = (full or "").strip().partition(" ")
    return first, last


def customer_id(store, client, order):
    """The WooCommerce customer: matched or created by email (default), or the one shared customer."""
    if store.setting("mirror_customer") == "shared":
        email = (store.setting("shared_customer_email") or "").strip()
        if not email:
            raise PermanentRemoteError("Mirror orders uses one shared customer, but its email is not set: enter "
                                       "Shared customer email in the store settings.")
        cached = woo_store.state(store).get("shared_customer")
        if cached and cached.get("email") == email:
            return cached["id"]
        customer, _ = client.find_or_create_customer(email, first_name="WMS", last_name="orders")
        woo_store.save_state(store, shared_customer={"email": email, "id": customer["id"]})
        return customer["id"]
    if not order.customer_email:
        return 0  # a guest order
    first, last = split_name(order.customer_name)
    customer, _ = client.find_or_create_customer(order.customer_email, first_name=first, last_name=last)
    return customer["id"]


def mirror_body(store, order, lines, customer):
    first, last = split_name(order.ship_name or order.customer_name)
    address = {"first_name": first, "last_name": last, "address_1": order.ship_address1,
               "address_2": order.ship_address2, "city": order.ship_city, "state": order.ship_state,
               "postcode": order.ship_postal_code, "country": order.ship_country}
    return {"status": "processing", "customer_id": customer, "line_items": lines,
            "billing": {**address, "email": order.customer_email, "phone": order.customer_phone},
            "shipping": address, "customer_note": order.note or "",
            "meta_data": [{"key": SOURCE_META, "value": str(order.id)},
                          {"key": "_wms_order_number", "value": order.number}]}


def find_mirror(client, order, since):
    for woo_order in client.iter_orders(modified_after=since):
        meta = {m.get("key"): str(m.get("value")) for m in woo_order.get("meta_data") or []}
        if meta.get(SOURCE_META) == str(order.id):
            return woo_order
    return None


@contextmanager
def failure_recorded(record):
    """A remote failure leaves its reason on the sync record before it is raised: pending when the job
    retries it by itself, failed when it needs a fix and a Retry."""
    try:
        yield
    except TransientRemoteError as exc:
        set_record(record, "pending", f"WooCommerce did not answer ({exc.message}); retrying automatically.")
        db.session.commit()
        raise
    except RemoteError as exc:
        set_record(record, "failed", exc.message)
        db.session.commit()
        raise


def mirror_order(store, order):
    record = record_for("order", store, order.id)
    if record.status in ("synced", "not_required"):
        return record
    if order.status == "cancelled":
        set_record(record, "not_required", "The order was cancelled in the WMS before it reached WooCommerce.")
        return record
    attempted = woo_store.parse_time((record.data or {}).get("attempted_at"))
    set_record(record, "pending", "Creating the order in WooCommerce.", attempted_at=woo_store.now_text(),
               attempts_made=int((record.data or {}).get("attempts_made") or 0) + 1)
    record.attempts += 1
    lines_product_ids = [l.product_id for l in order.lines if l.product_id]
    db.session.commit()
    with failure_recorded(record), db.session.no_autoflush:  # no write lock is taken while WooCommerce answers
        lines = mirror_lines(store, order)
        client = woo_store.make_client(store)
        woo_order = find_mirror(client, order, attempted - LOOKUP_WINDOW) if attempted else None
        if woo_order is None:
            woo_order = client.create_order(mirror_body(store, order, lines, customer_id(store, client, order)))
    set_record(record, "synced", f"Created in WooCommerce as order #{woo_order.get('number')} (processing).",
               reference=woo_order["id"], woo_number=woo_order.get("number"))
    for line in order.lines:
        if line.product_id:
            stock.count_woo_applied(store, line.product_id, line.quantity)
    stock.repush_after_woo_change(store, lines_product_ids)
    return record


def _for_store_and_order(payload, action):
    store = db.session.get(Store, payload["store_id"])
    order = db.session.get(Order, payload["order_id"])
    if store is not None and order is not None and store.plugin == PLUGIN:
        action(store, order)


def mirror_order_job(payload):
    _for_store_and_order(payload, mirror_order)


def queue_mirror_cancels(order):
    """Every store holding a mirror of the order, mirroring still on or not."""
    for store in woo_store.woo_stores():
        if store.id != order.store_id and record_for("order", store, order.id, create=False) is not None:
            outbox.emit(CANCEL_MIRROR_TOPIC, {"store_id": store.id, "order_id": order.id},
                        dedupe_key=f"woocommerce:cancel-mirror:{store.id}:{order.id}")


def cancel_mirror(store, order):
    """Cancel the WooCommerce copy of a cancelled WMS order; WooCommerce then restores its stock. Its own
    SyncRecord (`cancel@<store id>`) shows the outcome and offers Retry."""
    mirror = record_for("order", store, order.id, create=False)
    if mirror is None or mirror.status in ("failed", "not_required"):
        return None   # never made in WooCommerce, and mirror_order will not make it now
    if mirror.status == "pending":
        raise TransientRemoteError("The order is still being created in WooCommerce; its cancel waits for it.")
    record = record_for("cancel", store, order.id)
    if record.status == "synced":
        return record
    with failure_recorded(record):
        woo_store.make_client(store).update_order(int(mirror.remote_reference), {"status": "cancelled"})
    set_record(record, "synced", f"Cancelled in WooCommerce (order #{(mirror.data or {}).get('woo_number')}).",
               reference=mirror.remote_reference)
    for line in order.lines:
        if line.product_id:   # WooCommerce raised its stock for these units itself
            stock.count_woo_applied(store, line.product_id, -line.quantity)
    stock.repush_after_woo_change(store, [l.product_id for l in order.lines if l.product_id])
    return record


def cancel_mirror_job(payload):
    _for_store_and_order(payload, cancel_mirror)


# -- back (tracking) -------------------------------------------------------------------------------

def woo_order_id(store, order):
    """The order's id in this store: its own id, or the id of its mirror."""
    if order.store_id == store.id and order.remote_id:
        return int(order.remote_id)
    record = record_for("order", store, order.id, create=False)
    if record is not None and record.status == "synced" and record.remote_reference:
        return int(record.remote_reference)
    return None


def stores_of(order):
    found = []
    for store in woo_store.woo_stores():
        if woo_order_id(store, order) is not None:
            found.append(store)
    return found


def queue_tracking(shipment):
    for store in stores_of(shipment.order):
        record = record_for("shipment", store, shipment.id)
        set_record(record, "pending", "Waiting to send the tracking to WooCommerce.")
        outbox.emit(TRACKING_TOPIC, {"shipment_id": shipment.id, "store_id": store.id},
                    dedupe_key=f"{TRACKING_TOPIC}:{store.id}:{shipment.id}")


def tracking_note(shipment):
    text = f"Your order has shipped with {shipment.carrier}"
    if shipment.tracking_number:
        text += f", tracking number {shipment.tracking_number}"
    if shipment.tracking_url:
        text += f": {shipment.tracking_url}"
    return text + "."


def push_tracking(store, shipment):
    record = record_for("shipment", store, shipment.id)
    woo_id = woo_order_id(store, shipment.order)
    note = tracking_note(shipment)
    db.session.commit()
    with failure_recorded(record):
        client = woo_store.make_client(store)
        notes = client.list_order_notes(woo_id, kind="customer")
        if not any(n.get("note") == note for n in notes):
            client.add_order_note(woo_id, note, customer_note=True)
        if client.get_order(woo_id).get("status") != "completed":
            client.update_order(woo_id, {"status": "completed"})
    set_record(record, "synced", "Tracking sent to the customer; order completed in WooCommerce.",
               reference=woo_id)


def push_tracking_job(payload):
    store = db.session.get(Store, payload["store_id"])
    shipment = db.session.get(Shipment, payload["shipment_id"])
    if store is None or shipment is None:
        return
    push_tracking(store, shipment)


# -- tags ------------------------------------------------------------------------------------------

def tag_list(meta_data):
    value = next((m.get("value") for m in meta_data or [] if m.get("key") == TAGS_META), "") or ""
    return [t for t in str(value).split(",") if t]


def merged_tags(current, add, remove=()):
    tags = [t for t in current if t not in set(remove)]
    tags += [t for t in add if t not in tags]
    return tags


def tag_order(store, order, tags, note=None):
    """Tags as order meta `wms_tags` and `note` as a private note, each written once."""
    woo_id = woo_order_id(store, order)
    if woo_id is None:
        return False
    client = woo_store.make_client(store)
    woo_order = client.get_order(woo_id)
    current = tag_list(woo_order.get("meta_data"))
    wanted = merged_tags(current, tags)
    if wanted != current:
        client.update_order(woo_id, {"meta_data": [{"key": TAGS_META, "value": ",".join(wanted)}]})
    if note and not any(n.get("note") == note for n in client.list_order_notes(woo_id, kind="internal")):
        client.add_order_note(woo_id, note)
    return True


def tag_product(store, mapping, tags, remove_tags=()):
    """Tags as product (or variation) meta `wms_tags`; nothing is written when they are already right."""
    client = woo_store.make_client(store)
    remote_id = int(mapping.remote_variant_id)
    if stock.is_variation(mapping):
        parent = int(mapping.remote_product_id)
        current = tag_list(client.get_variation(parent, remote_id).get("meta_data"))
        wanted = merged_tags(current, tags, remove_tags)
        if wanted != current:
            client.update_variation(parent, remote_id, {"meta_data": [{"key": TAGS_META, "value": ",".join(wanted)}]})
        return True
    current = tag_list(client.get_product(remote_id).get("meta_data"))
    wanted = merged_tags(current, tags, remove_tags)
    if wanted != current:
        client.update_product(remote_id, {"meta_data": [{"key": TAGS_META, "value": ",".join(wanted)}]})
    return True

