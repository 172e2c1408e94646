"""Pushing one WMS order to Vintrace as a Sales Order: strict product matching, idempotent create.

`push_order(order)` is the whole flow; the job handler and Sync Orders both run it (Sync Orders
through the outbox runner, so a push is always an outbox message and the runner's retry rules
apply):

1. An order already synced is not sent again.
2. The settings are read; missing ones fail the order with a message saying what to fill in.
3. Every line is checked against the Vintrace stock item with the same SKU, priced in the
   configured sales price list: the line's name must equal the item's code or its description,
   its SKU the item's SKU, its unit price the item's price in that list. Any mismatch fails the
   whole order naming the product and the field; nothing is sent.
4. The Sales Order is looked up by ``externalTransactionId`` (the order number) and created only
   when Vintrace has none, so a retry after a timeout never makes a second one.

Outcome: the order's `SyncRecord(plugin="vintrace", object_type="order")` is synced (remote
reference = the Sales Order code) or failed (message); a transient error (timeout, reset, 5xx,
429) leaves it pending with the reason and is re-raised for the runner's backoff. Each final
outcome asks the source store to tag its order (`order.tag_requested`).
"""

from dataclasses import dataclass
from decimal import Decimal
from uuid import uuid4

from flask import current_app
from sqlalchemy import select

from wms import outbox
from wms.core.models import Order, OutboxMessage
from wms.core.models._base import utcnow
from wms.extensions import db
from wms.integrations.errors import PermanentRemoteError, TransientRemoteError
from wms.integrations.http import DEFAULT_TIMEOUT
from wms.jobs import runner
from wms.plugins.models import SyncRecord

from .client import OrderLine, VintraceClient

PLUGIN = "vintrace"
OBJECT_TYPE = "order"
PUSH_TOPIC = "vintrace.push_order"
TAG_TOPIC = "order.tag_requested"
TAG_CREATED = "vintrace-order-created"
TAG_ERROR = "vintrace-order-error"
REQUIRED = (("base_url", "Vintrace URL"), ("api_key", "API key"), ("customer_name", "Vintrace customer name"),
            ("price_list", "Sales price list"))
VERIFIED_KEY = "_verified"   # what the Vintrace Settings page checked against Vintrace on save


class OrderRejected(PermanentRemoteError):
    """The order cannot be sent as it is: a person must fix a product, a setting or the order."""


@dataclass
class Outcome:
    status: str            # synced, failed, pending
    message: str
    reference: str | None = None
    sent: bool = False     # True when this run created the Sales Order


# -- settings and client ---------------------------------------------------------------------------

def missing_settings(config):
    return [label for key, label in REQUIRED if not config.get(key)]


def verified_marker(config):
    return {"base_url": config.get("base_url"), "customer_name": config.get("customer_name"),
            "price_list": config.get("price_list")}


def settings_verified(config):
    """True when the saved customer and price list are the ones the Settings page checked."""
    return (config.get(VERIFIED_KEY) or {}) == verified_marker(config)


def make_client(config):
    timeout = current_app.config.get("VINTRACE_TIMEOUT", DEFAULT_TIMEOUT)
    return VintraceClient(config["base_url"], config["api_key"], timeout=timeout)


def external_id(order):
    """The store order's reference as Vintrace's externalTransactionId: its number (#1001)."""
    return order.number


def wms_reference(order):
    return f"WMS order {order.id}"


# -- sync records ------------------------------------------------------------------------------------

def record_for(order, create=True):
    record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_type == OBJECT_TYPE, SyncRecord.object_id == order.id))
    if record is None and create:
        record = SyncRecord(plugin=PLUGIN, object_type=OBJECT_TYPE, object_id=order.id, store_id=order.store_id,
                            status="pending", attempts=0,
                            data={"external_transaction_id": external_id(order)},
                            message="Waiting to be sent to Vintrace.")
        db.session.add(record)
        db.session.flush()
    return record


def queue_push(order):
    """Called from the order-created hook: a pending record and one push message per order."""
    record_for(order)
    outbox.emit(PUSH_TOPIC, {"order_id": order.id}, dedupe_key=f"{PUSH_TOPIC}:{order.id}")


def _set_data(record, **values):
    data = dict(record.data or {})
    data.update(values)
    record.data = data


def request_tag(order, record, tag, note):
    """Ask the source store's plugin to tag its order; the tag asked for is kept on the record."""
    store_order = order.store_id is not None
    _set_data(record, tag=tag, tag_note=note, tag_requested_at=utcnow().isoformat(timespec="seconds"),
              tag_sent_to_store=store_order)
    if store_order:
        outbox.emit(TAG_TOPIC, {"order_id": order.id, "tags": [tag], "note": note},
                    dedupe_key=f"{TAG_TOPIC}:{order.id}:{tag}")


def _fail(order, record, message):
    record.status, record.message = "failed", message[:2000]
    _set_data(record, failed_at=utcnow().isoformat(timespec="seconds"), transient=False)
    request_tag(order, record, TAG_ERROR, f"Vintrace: {message}"[:1000])
    db.session.commit()
    return Outcome("failed", record.message)


def _synced(order, record, sales_order, created):
    record.status, record.remote_reference = "synced", sales_order.code or str(sales_order.id)
    record.synced_at = utcnow()
    how = "created in" if created else "found in (already there, not sent again)"
    record.message = f"Sales Order {record.remote_reference} {how} Vintrace."
    _set_data(record, sales_order_id=sales_order.id, sales_order_code=sales_order.code,
              external_transaction_id=sales_order.external_transaction_id, transient=False)
    request_tag(order, record, TAG_CREATED, f"Vintrace Sales Order {record.remote_reference}")
    _settle_earlier_failures(order, record.remote_reference)
    db.session.flush()
    return Outcome("synced", record.message, record.remote_reference, sent=created)


def _settle_earlier_failures(order, reference):
    """Failed pushes of this order need no Retry any more: mark them done, saying why."""
    earlier = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.topic == PUSH_TOPIC, OutboxMessage.status.in_(("failed", "dead")))).all()
    for message in earlier:
        if (message.payload or {}).get("order_id") == order.id:
            message.status = "done"
            message.last_error = (f"Superseded: the order was sent later (Sales Order {reference}). "
                                  f"Earlier error: {message.last_error or ''}")[:2000]


# -- strict matching ------------------------------------------------------------------------------

def _money(value):
    return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None


def _label(line):
    return f"Product '{line.name or line.sku}' (SKU {line.sku})" if line.sku else f"Product '{line.name}'"


def check_lines(order, products, price_list):
    """(lines to send, problems): each order line against the Vintrace item with its SKU."""
    lines, problems = [], []
    for index, line in enumerate(order.lines, start=1):
        if not line.sku:
            problems.append(f"Line {index} ('{line.name}') has no SKU; Vintrace products are matched by SKU.")
            continue
        item = products.get(line.sku)
        if item is None:
            problems.append(f"{_label(line)}: SKU not found; no Vintrace product has SKU '{line.sku}'.")
            continue
        fields = []
        if line.name not in (item.code, item.description):
            fields.append(f"name mismatch: the order says '{line.name}', Vintrace has '{item.code}'"
                          + (f" ('{item.description}')" if item.description else ""))
        if item.sku != line.sku:
            fields.append(f"SKU mismatch: the order says '{line.sku}', Vintrace has '{item.sku}'")
        price = _money(line.unit_price)
        if item.price is None:
            fields.append(f"price missing: '{item.code}' has no price in Vintrace price list '{price_list}'")
        elif _money(item.price) != price:
            fields.append(f"price mismatch: the order says {price}, Vintrace price list '{price_list}' "
                          f"has {_money(item.price)}")
        if fields:
            problems.append(f"{_label(line)}: " + "; ".join(fields) + ".")
            continue
        lines.append(OrderLine(name=item.code, sku=item.sku, unit_price=price, quantity=line.quantity))
    return lines, problems


# -- the push ---------------------------------------------------------------------------------------

def push_order(order, config):
    """Send one order (see the module docstring). Commits failures itself; raises for the runner:
    `OrderRejected` / `PermanentRemoteError` for a failure a person must fix, a
    `TransientRemoteError` for one the runner retries with backoff.

    Nothing is written to the session while Vintrace answers: the call log writes each call in
    its own transaction, which an open write transaction would block on SQLite."""
    record = record_for(order)
    if record.status == "synced":
        return Outcome("synced", f"Already in Vintrace as Sales Order {record.remote_reference}; not sent again.",
                       record.remote_reference)
    if order.status == "cancelled":
        record.status, record.message = "not_required", "The order was cancelled before it was sent; nothing sent."
        return Outcome("not_required", record.message)
    record.attempts += 1
    _set_data(record, last_attempt_at=utcnow().isoformat(timespec="seconds"))
    lines = list(order.lines)
    db.session.commit()
    missing = missing_settings(config)
    if missing:
        raise _raise_failed(order, record, "Vintrace is not set up: fill in " + ", ".join(missing)
                            + " on the Vintrace Settings page, then use Sync Orders.")
    if not lines:
        raise _raise_failed(order, record, "The order has no lines; there is nothing to send.")
    try:
        sales_order, created, problem = _send(order, config)
    except TransientRemoteError as exc:
        record.status = "pending"
        record.message = (f"Vintrace did not answer ({exc.message}); retrying automatically. A retry looks the "
                          f"order up first, so it is never created twice.")[:2000]
        _set_data(record, transient=True)
        db.session.commit()
        raise
    except PermanentRemoteError as exc:
        raise _raise_failed(order, record, exc.message) from exc
    if problem:
        raise _raise_failed(order, record, problem)
    return _synced(order, record, sales_order, created)


def _send(order, config):
    """(sales order, created, None) or (None, False, problem); only remote calls, no session writes."""
    client = make_client(config)
    customer, price_list = config["customer_name"], config["price_list"]
    if not settings_verified(config) and client.find_customer(customer) is None:
        return None, False, (f"Customer '{customer}' does not exist in Vintrace (names must match exactly). "
                             "Correct it on the Vintrace Settings page, then use Sync Orders.")
    products = client.find_products_by_sku(sorted({l.sku for l in order.lines if l.sku}), price_list)
    lines, problems = check_lines(order, products, price_list)
    if problems:
        return None, False, ("Not sent: " + " ".join(problems)
                             + " Fix the product in the store or in Vintrace, then use Sync Orders.")
    existing = client.find_sales_order(external_id(order))
    if existing is not None:
        theirs = (existing.raw or {}).get("reference")
        if theirs and theirs != wms_reference(order):
            return None, False, (f"Vintrace already has Sales Order {existing.code} with externalTransactionId "
                                 f"'{external_id(order)}' for {theirs}, not this order; rename one of the orders "
                                 "or enter this one in Vintrace by hand.")
        return existing, False, None
    sales_order = client.create_sales_order(
        customer_name=customer, price_list_name=price_list, lines=lines,
        external_transaction_id=external_id(order), order_date=order.placed_at,
        reference=wms_reference(order), storage_area_id=config.get("storage_area_id") or None,
        notes=f"From the WMS ({order.source}{', store ' + str(order.store_id) if order.store_id else ''}).")
    return sales_order, True, None


def _raise_failed(order, record, message):
    _fail(order, record, message)
    return OrderRejected(message)


def push_order_job(payload):
    """Outbox handler of `vintrace.push_order` {"order_id"}."""
    from .plugin import plugin
    order = db.session.get(Order, payload["order_id"])
    if order is None:
        return
    push_order(order, plugin.config())


# -- Sync Orders ---------------------------------------------------------------------------------

def parse_order_names(text):
    """Order names separated by commas, spaces or new lines; each once, in the order given."""
    seen, names = set(), []
    for part in (text or "").replace(",", " ").split():
        if part not in seen:
            seen.add(part)
            names.append(part)
    return names


def find_orders(name):
    orders = db.session.scalars(select(Order).where(Order.number == name).order_by(Order.id)).all()
    if not orders and not name.startswith("#"):
        orders = db.session.scalars(select(Order).where(Order.number == f"#{name}").order_by(Order.id)).all()
    return orders


SAFETY_DELAY_SECONDS = 60   # a Sync Orders message the request could not finish runs in a worker then
MAX_NAMES = 200


@dataclass
class SyncResult:
    name: str                  # what the admin typed
    order_id: int | None
    number: str | None
    ok: bool
    status: str                # synced, failed, pending, not_found, not_required, busy
    message: str
    reference: str | None = None


def sync_orders(names):
    """Sync Orders: push each named order that is not in Vintrace yet; one result per order."""
    results = []
    for name in names:
        orders = find_orders(name)
        if not orders:
            results.append(SyncResult(name, None, None, False, "not_found",
                                      f"No order named '{name}' in the WMS."))
            continue
        for order in orders:
            results.append(_sync_one(name, order))
    return results


def _sync_one(name, order):
    record = record_for(order)
    if record.status == "synced":
        db.session.commit()
        return SyncResult(name, order.id, order.number, True, "synced",
                          f"Already in Vintrace as Sales Order {record.remote_reference}; not sent again.",
                          record.remote_reference)
    # The push is an outbox message like any other, run here and now; should this request die, a
    # worker runs it once the safety delay is over (the claim lets exactly one of them run it).
    message_id = outbox.emit(PUSH_TOPIC, {"order_id": order.id, "sync_orders": True},
                             dedupe_key=f"{PUSH_TOPIC}:{order.id}:sync:{uuid4().hex}",
                             delay_seconds=SAFETY_DELAY_SECONDS)
    db.session.commit()
    ran = runner.run(message_id)
    db.session.expire_all()
    record = record_for(order)
    db.session.commit()
    if ran == "not claimable":
        return SyncResult(name, order.id, order.number, False, "busy",
                          "A worker is sending this order right now; its result shows on the order page.")
    ok = record.status == "synced"
    return SyncResult(name, order.id, order.number, ok, record.status, record.message or ran,
                      record.remote_reference if ok else None)
