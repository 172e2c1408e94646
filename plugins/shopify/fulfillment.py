"""Tracking back to Shopify: when an order from a Shopify store ships in the WMS, a job creates the
fulfillment in Shopify (`fulfillmentCreate`) for the shipped lines of the fulfillment orders at the
shipping warehouse's locations, with carrier, tracking number and URL, notifying the customer when the
store says so.

Shopify has no idempotency key for fulfillments, so the job is made idempotent by its sync record (one
per shipment) and by reading the fulfillment orders first: units Shopify already counts as fulfilled
(by an earlier attempt whose answer was lost) are not sent again.
"""

from flask import render_template
from sqlalchemy import select

from wms import outbox
from wms.core.models import Shipment
from wms.core.models._base import utcnow
from wms.extensions import db
from wms.integrations.errors import PermanentRemoteError
from wms.plugins.models import Store, SyncRecord

from . import connection
from .orders import numeric_id

TOPIC = "shopify.create_fulfillment"
RECORD = "shopify_fulfillment"
SHIPPED_STATES = ("shipped", "in_transit", "out_for_delivery", "delivered")
OPEN_STATES = ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD")


def shopify_store_of(order):
    if order is None or not order.store_id or not order.remote_id:
        return None
    store = db.session.get(Store, order.store_id)
    return store if store is not None and store.plugin == "shopify" else None


def shipment_changed(shipment, old, new):
    """Hook: a shipped shipment of a Shopify order queues its fulfillment (once)."""
    if shipment is None or new not in SHIPPED_STATES or shopify_store_of(shipment.order) is None:
        return
    record = record_for(shipment, create=True)
    if record.status in ("synced", "not_required"):
        return
    outbox.emit(TOPIC, {"shipment_id": shipment.id})


def record_for(shipment, create=False):
    record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == "shopify", SyncRecord.object_type == RECORD, SyncRecord.object_id == shipment.id))
    if record is None and create:
        record = SyncRecord(plugin="shopify", store_id=shipment.order.store_id, object_type=RECORD,
                            object_id=shipment.id, status="pending", data={},
                            message="Waiting to send the tracking to Shopify.")
        db.session.add(record)
        db.session.flush()
    return record


def fulfill_job(payload):
    shipment = db.session.get(Shipment, payload["shipment_id"])
    store = shopify_store_of(shipment.order) if shipment else None
    if store is None:
        return
    record = record_for(shipment, create=True)
    if record.status in ("synced", "not_required"):
        return
    record.attempts += 1
    db.session.commit()
    try:
        send_fulfillment(store, shipment, record)
    except PermanentRemoteError as exc:
        record.status, record.message = "failed", exc.message[:2000]
        db.session.commit()
        raise
    db.session.commit()


def send_fulfillment(store, shipment, record):
    client = connection.client_for(store)
    wanted = shipped_quantities(shipment)
    locations = {loc.remote_id for loc in store.locations if loc.warehouse_id == shipment.warehouse_id}
    groups = allocate(client.fulfillment_orders(shipment.order.remote_id), wanted, locations)
    if not groups:
        record.status, record.synced_at = "synced", utcnow()
        record.message = "Shopify already shows these units as fulfilled."
        return
    created = []
    for location_groups in groups.values():
        created.append(client.create_fulfillment(
            location_groups, carrier=shipment.carrier, tracking_number=shipment.tracking_number or None,
            tracking_url=shipment.tracking_url or None, notify_customer=bool(store.setting("notify_customer", True))))
        record.data = {**(record.data or {}), "fulfillments": [f["id"] for f in created]}
        db.session.commit()
    record.status, record.synced_at = "synced", utcnow()
    record.remote_reference = created[0]["id"]
    record.message = (f"Fulfilled in Shopify ({', '.join(f['name'] for f in created)}) with tracking "
                      f"{shipment.tracking_number or '(none)'} by {shipment.carrier}.")


def shipped_quantities(shipment):
    """{Shopify line item id: units in this shipment}."""
    wanted = {}
    for line in shipment.lines:
        remote = line.order_line.remote_line_id if line.order_line else None
        if remote:
            wanted[numeric_id(remote)] = wanted.get(numeric_id(remote), 0) + line.quantity
    return wanted


def allocate(fulfillment_orders, wanted, locations):
    """{location: {fulfillment order id: {fo line id: quantity}}} covering `wanted` from what is still
    unfulfilled, preferring the fulfillment orders at the shipping warehouse's locations."""
    open_ones = [fo for fo in fulfillment_orders if fo["status"] in OPEN_STATES]
    open_ones.sort(key=lambda fo: fo["location_id"] not in locations)
    remaining = dict(wanted)
    groups = {}
    for fo in open_ones:
        for line in fo["line_items"]:
            line_id = numeric_id(line["line_item_id"])
            take = min(remaining.get(line_id, 0), line["remaining_quantity"])
            if take <= 0:
                continue
            remaining[line_id] -= take
            groups.setdefault(fo["location_id"], {}).setdefault(fo["id"], {})[line["id"]] = take
    return groups


def order_panel(order):
    """The Shopify panel of an order page: where its shipments' tracking stands in Shopify."""
    store = shopify_store_of(order)
    if store is None:
        return None
    shipments = db.session.scalars(select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)).all()
    records = {r.object_id: r for r in db.session.scalars(select(SyncRecord).where(
        SyncRecord.plugin == "shopify", SyncRecord.object_type == RECORD,
        SyncRecord.object_id.in_([s.id for s in shipments])))} if shipments else {}
    return render_template("shopify/order_panel.html", order=order, store=store, shipments=shipments,
                           records=records)
