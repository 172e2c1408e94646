"""Orders from Shopify: webhooks (orders/create, updated, paid, cancelled) and a periodic reconciliation
that reads the orders updated since the last check. Both end in `upsert_order`, so an order is created
once whatever arrives first (orders/paid before orders/create, a duplicate, a missed webhook) and
later news only updates it. Also: app/uninstalled and the privacy webhooks.
"""

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import Order
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.plugins.models import ProductMapping, Store, WebhookEvent

from . import connection, stock

RECONCILE_TOPIC = "shopify.reconcile_orders"
RECONCILE_STORE_TOPIC = "shopify.reconcile_store_orders"
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled")
FIRST_LOOK_BACK = timedelta(days=1)   # how far back the first reconciliation of a store reads
OVERLAP = timedelta(minutes=2)        # re-read a little before the last check (clock skew, late commits)
CUSTOMER_FIELDS = ("customer_name", "customer_email", "customer_phone", "ship_name", "ship_address1",
                   "ship_address2", "ship_city", "ship_state", "ship_postal_code")


# -- one order, whichever way it arrived -------------------------------------------------------------------
def numeric_id(value):
    """'gid://shopify/Order/123' or 123 -> '123'."""
    return str(value).rsplit("/", 1)[-1] if value is not None else None


def fulfillment_state(value):
    text = (value or "").lower()
    if text in ("fulfilled",):
        return "fulfilled"
    if text in ("partial", "partially_fulfilled"):
        return "partial"
    return "unfulfilled"


def from_webhook(payload):
    """An orders/* webhook body (REST shape) as the plugin's order dict."""
    address = payload.get("shipping_address") or {}
    customer = payload.get("customer") or {}
    name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p)
    return {
        "remote_id": numeric_id(payload["id"]), "name": payload.get("name") or "",
        "email": payload.get("email") or payload.get("contact_email") or "",
        "cancelled": bool(payload.get("cancelled_at")), "closed": bool(payload.get("closed_at")),
        "financial_status": (payload.get("financial_status") or "").lower(),
        "fulfillment_status": fulfillment_state(payload.get("fulfillment_status")),
        "note": payload.get("note") or "", "customer_name": name or address.get("name") or "",
        "address": {"name": address.get("name"), "address1": address.get("address1"),
                    "address2": address.get("address2"), "city": address.get("city"),
                    "state": address.get("province_code"), "zip": address.get("zip"),
                    "country": address.get("country_code"), "phone": address.get("phone")},
        "lines": [{"remote_line_id": numeric_id(li["id"]), "sku": li.get("sku") or "",
                   "variant_id": numeric_id(li.get("variant_id")) if li.get("variant_id") else None,
                   "quantity": int(li.get("quantity") or 0), "price": li.get("price"),
                   "title": li.get("name") or li.get("title") or ""} for li in payload.get("line_items") or []],
    }


def from_graphql(node):
    """An order read by ShopifyClient.orders_updated_since as the plugin's order dict."""
    address = node.get("shipping_address") or {}
    return {
        "remote_id": numeric_id(node["id"]), "name": node.get("name") or "", "email": node.get("email") or "",
        "cancelled": bool(node.get("cancelled_at")), "closed": bool(node.get("closed")),
        "financial_status": (node.get("financial_status") or "").lower(),
        "fulfillment_status": fulfillment_state(node.get("fulfillment_status")),
        "note": node.get("note") or "", "customer_name": address.get("name") or "",
        "address": {"name": address.get("name"), "address1": address.get("address1"),
                    "address2": address.get("address2"), "city": address.get("city"),
                    "state": address.get("provinceCode"), "zip": address.get("zip"),
                    "country": address.get("countryCodeV2"), "phone": address.get("phone")},
        "lines": [{"remote_line_id": numeric_id(li["id"]), "sku": li.get("sku") or "",
                   "variant_id": numeric_id(li.get("variant_id")) if li.get("variant_id") else None,
                   "quantity": int(li.get("quantity") or 0), "price": li.get("price"), "title": li.get("title") or ""}
                  for li in node.get("line_items") or []],
    }


def filter_refusal(store, order):
    """Why the store's filters keep `order` out (None when it passes)."""
    if store.setting("order_status", "open") == "open" and (order["cancelled"] or order["closed"]):
        return "it is cancelled or closed"
    financial = store.setting("financial_status") or []
    if financial and order["financial_status"] not in financial:
        return f"its financial status is {order['financial_status'] or 'unknown'}"
    fulfillment = store.setting("fulfillment_status") or []
    if fulfillment and order["fulfillment_status"] not in fulfillment:
        return f"its fulfillment status is {order['fulfillment_status']}"
    return None


def current_state(store, delivered):
    """The order as Shopify holds it now. Deliveries come late, twice and out of order (a create after
    its cancel), so a delivery only says "look at this order"; its body is used only when Shopify no
    longer has the order."""
    fresh = connection.client_for(store).get_order(delivered["remote_id"])
    if fresh is None:
        return delivered
    order = from_graphql(fresh)
    for key in ("email", "note", "address", "customer_name"):   # what a later read may leave out
        order[key] = order[key] or delivered[key]
    return order


def upsert_order(store, order, client=None):
    """Create the WMS order once, or bring the existing one up to date. Returns the WMS order or None."""
    found = _upsert(store, order, client)
    if found is not None:
        stock.levels_moved_in_shopify(store, [line.product_id for line in found.lines if line.product_id])
    return found


def _upsert(store, order, client):
    existing = find_order(store, order["remote_id"])
    if existing is not None:
        return update_order(existing, order)
    if order["cancelled"] or filter_refusal(store, order):
        return None
    warehouse, process = route_for(store, order, client)
    data = order_service.OrderInput(
        number=order["name"] or f"Shopify {order['remote_id']}", source="shopify", store_id=store.id,
        remote_id=order["remote_id"], warehouse=warehouse, shipping_process=process, unknown_sku="hold",
        lines=order_lines(store, order), details=order_details(order))
    try:
        with db.session.begin_nested():
            return order_service.create_order(data)
    except IntegrityError:  # the same order created by a concurrent delivery a moment ago
        existing = find_order(store, order["remote_id"])
        return update_order(existing, order) if existing is not None else None


def find_order(store, remote_id):
    return db.session.scalar(select(Order).where(Order.store_id == store.id, Order.remote_id == str(remote_id)))


def update_order(existing, order):
    if order["financial_status"]:
        existing.financial_status = order["financial_status"][:30]
    if order["cancelled"] and not existing.is_closed:
        try:
            with db.session.begin_nested():
                order_service.cancel(existing, reason="Cancelled in Shopify.")
        except ServiceError as exc:
            existing.hold_reason = f"Cancelled in Shopify, but not here: {exc.message}"[:500]
    return existing


def order_lines(store, order):
    """Lines with the WMS SKU of each mapped variant (a mapping by barcode may differ from Shopify's SKU)."""
    variant_ids = [line["variant_id"] for line in order["lines"] if line["variant_id"]]
    mapped = mapped_skus(store, variant_ids)
    return [order_service.LineInput(sku=mapped.get(line["variant_id"]) or line["sku"], quantity=line["quantity"],
                                    unit_price=line["price"], name=line["title"][:200],
                                    remote_line_id=line["remote_line_id"])
            for line in order["lines"] if line["quantity"] > 0]


def mapped_skus(store, variant_ids):
    if not variant_ids:
        return {}
    candidates = variant_ids + [f"gid://shopify/ProductVariant/{v}" for v in variant_ids]
    rows = db.session.scalars(select(ProductMapping).where(ProductMapping.store_id == store.id,
                                                           ProductMapping.remote_variant_id.in_(candidates)))
    return {numeric_id(m.remote_variant_id): m.product.sku for m in rows}


def order_details(order):
    address = order["address"]
    details = {"customer_name": order["customer_name"][:200], "customer_email": order["email"][:255],
               "customer_phone": (address["phone"] or "")[:50], "ship_name": (address["name"] or "")[:200],
               "ship_address1": (address["address1"] or "")[:255], "ship_address2": (address["address2"] or "")[:255],
               "ship_city": (address["city"] or "")[:120], "ship_state": (address["state"] or "")[:10],
               "ship_postal_code": (address["zip"] or "")[:20], "financial_status": order["financial_status"][:30],
               "note": order["note"][:1000], "channel": "web"}
    if address["country"]:
        details["ship_country"] = address["country"][:2]
    return details


def route_for(store, order, client=None):
    """Warehouse and shipping process of the Shopify location the order is assigned to (the store's
    default location when that one is not mapped; the core's default when no default is set)."""
    location_id = assigned_location(store, order, client)
    by_remote = {loc.remote_id: loc for loc in store.locations if loc.warehouse_id}
    location = by_remote.get(location_id) or store.default_location
    if location is None or location.warehouse is None:
        return None, None
    return location.warehouse, location.shipping_process


def assigned_location(store, order, client=None):
    """The location of the order's open fulfillment order with the most lines."""
    fulfillment_orders = (client or connection.client_for(store)).fulfillment_orders(order["remote_id"])
    open_ones = [fo for fo in fulfillment_orders if fo["status"] not in ("CLOSED", "CANCELLED")] or fulfillment_orders
    if not open_ones:
        return None
    return max(open_ones, key=lambda fo: len(fo["line_items"]))["location_id"]


# -- webhooks ----------------------------------------------------------------------------------------------
def handle_event(store, topic, payload):
    if topic in ORDER_TOPICS:
        return upsert_order(store, current_state(store, from_webhook(payload)))
    if topic == "app/uninstalled":
        return uninstalled(store)
    if topic == "customers/redact":
        return redact_customer(store, payload)
    if topic == "shop/redact":
        return redact_shop(store)
    return None  # topics we do not act on (customers/data_request: the admin answers it from the WMS)


def uninstalled(store):
    store.status = "disconnected"
    store.status_message = ("The app was uninstalled from the shop in Shopify. Add the store again to reconnect; "
                            "its mappings are kept.")
    connection.save_credentials(store, {})
    return store


def redact_customer(store, payload):
    """Erase what we hold of one customer of the store: their orders' contact and address, and the
    webhook bodies that carried them."""
    customer = payload.get("customer") or {}
    remote_ids = [numeric_id(i) for i in payload.get("orders_to_redact") or []]
    email = (customer.get("email") or "").strip().lower()
    conditions = [Order.remote_id.in_(remote_ids)] if remote_ids else []
    if email:
        conditions.append(db.func.lower(Order.customer_email) == email)
    if not conditions:
        return 0
    found = db.session.scalars(select(Order).where(Order.store_id == store.id, or_(*conditions))).all()
    for order in found:
        erase_customer(order)
    erase_payloads(store, {o.remote_id for o in found} | set(remote_ids), email)
    return len(found)


def redact_shop(store):
    """Erase every customer detail of the store's orders and every webhook body it sent."""
    found = db.session.scalars(select(Order).where(Order.store_id == store.id)).all()
    for order in found:
        erase_customer(order)
    erase_payloads(store, None, None)
    return len(found)


def erase_customer(order):
    for name in CUSTOMER_FIELDS:
        setattr(order, name, "")
    order.customer_birth_date = None
    order.note = ""


def erase_payloads(store, remote_ids, email):
    """Replace stored webhook bodies that hold the customer's data (all of the store's when ids is None)."""
    events = db.session.scalars(select(WebhookEvent).where(WebhookEvent.plugin == "shopify",
                                                           WebhookEvent.store_id == store.id)).all()
    for event in events:
        if remote_ids is None or carries_customer(event, remote_ids, email):
            event.payload = json.dumps({"redacted": True})


def carries_customer(event, remote_ids, email):
    try:
        body = json.loads(event.payload)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    order_ids = {numeric_id(body.get("id"))} if event.topic.startswith("orders/") else set()
    order_ids |= {numeric_id(i) for i in body.get("orders_to_redact") or []}
    emails = {str(body.get("email") or "").lower(), str((body.get("customer") or {}).get("email") or "").lower()}
    return bool(order_ids & set(remote_ids)) or bool(email and email in emails)


# -- reconciliation ----------------------------------------------------------------------------------------
def reconcile_job(payload):
    """Scheduled: queue a reconciliation of every connected Shopify store."""
    stores = db.session.scalars(select(Store).where(Store.plugin == "shopify", Store.status == "connected")).all()
    for store in stores:
        outbox.emit(RECONCILE_STORE_TOPIC, {"store_id": store.id})


def reconcile_store_job(payload):
    store = db.session.get(Store, payload["store_id"])
    if store is None or store.status != "connected":
        return 0
    from .stock import record_baselines
    record_baselines(store)
    return reconcile_store(store)


def reconcile_store(store):
    """Read the orders updated since the last check and upsert each; returns how many were read."""
    started = datetime.now(timezone.utc)
    checked = connection.written(store, "orders_checked_at")
    since = datetime.fromisoformat(checked) - OVERLAP if checked else started - FIRST_LOOK_BACK
    client = connection.client_for(store)
    count = 0
    for node in client.orders_updated_since(since):
        upsert_order(store, from_graphql(node), client)
        db.session.commit()
        count += 1
    connection.remember(store, orders_checked_at=started.isoformat())
    db.session.commit()
    return count
