"""What the Vinoshipper plugin does with WMS orders: decide, send, void, and bring fulfillment back.

Every function here runs in a worker (outbox job) or in a view, inside an app context. Each order
has one `SyncRecord(plugin="vinoshipper", object_type="order")`; its status is what the order card
shows:

    pending        waiting for the send job (or retrying after Vinoshipper could not be reached)
    synced         "Sent to Vinoshipper": accepted; data["stage"] follows open -> fulfilled ->
                   shipped -> delivered
    failed         "Failed to Send": data["problems"] lists Vinoshipper's reasons one by one
    not_required   "Not Required to Send": pickup, POS carry-out, state not selected, refund or
                   exchange, cancelled, or a person's Don't Send
    voided         "Voided in Vinoshipper": cancelled there, or by our Void Sync

The record's data also keeps the Vinoshipper order number (fixed before the first call, so a retry
looks up the same number and never creates a second order) and the card's activity log
(data["events"]).
"""

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import Order
from wms.core.models._base import utcnow
from wms.core.services import orders as order_service
from wms.extensions import db
from wms.integrations.errors import PermanentRemoteError, RemoteAuthError, RemoteError, TransientRemoteError
from wms.plugins.models import SyncRecord

from . import contract as vs
from .client import Address, Customer, OrderLine, OrderRequest, VinoshipperClient, VinoshipperRejected

NAME = "vinoshipper"
TOPIC_SEND = "vinoshipper.send_order"
TOPIC_VOID = "vinoshipper.void_order"
TOPIC_REFRESH = "vinoshipper.refresh_order"
TOPIC_POLL = "vinoshipper.poll"
MAX_EVENTS = 60
REFUND_STATUSES = ("refunded", "partially_refunded")
EXCHANGE_NOTE = re.compile(r"\bexchange\b", re.IGNORECASE)
POLL_STAGES = ("open", "fulfilled", "shipped")
WEBHOOK_POLL_AFTER = timedelta(hours=1)   # with webhooks on, polling only catches up on quiet orders
UPS_TRACKING_URL = "https://www.ups.com/track?loc=en_US&tracknum={numbers}"
STAGE_TO_SHIPMENT = {"shipped": "shipped", "delivered": "delivered"}

US_STATES = (
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"), ("CA", "California"),
    ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"), ("DC", "District of Columbia"),
    ("FL", "Florida"), ("GA", "Georgia"), ("HI", "Hawaii"), ("ID", "Idaho"), ("IL", "Illinois"),
    ("IN", "Indiana"), ("IA", "Iowa"), ("KS", "Kansas"), ("KY", "Kentucky"), ("LA", "Louisiana"),
    ("ME", "Maine"), ("MD", "Maryland"), ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"),
    ("MS", "Mississippi"), ("MO", "Missouri"), ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"),
    ("NH", "New Hampshire"), ("NJ", "New Jersey"), ("NM", "New Mexico"), ("NY", "New York"),
    ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"), ("OK", "Oklahoma"), ("OR", "Oregon"),
    ("PA", "Pennsylvania"), ("RI", "Rhode Island"), ("SC", "South Carolina"), ("SD", "South Dakota"),
    ("TN", "Tennessee"), ("TX", "Texas"), ("UT", "Utah"), ("VT", "Vermont"), ("VA", "Virginia"),
    ("WA", "Washington"), ("WV", "West Virginia"), ("WI", "Wisconsin"), ("WY", "Wyoming"),
)
STATE_NAMES = dict(US_STATES)


class ConfigError(ServiceError):
    """The plugin's settings do not allow the call (missing key, bad shipping-method mapping)."""


# -- settings --------------------------------------------------------------------------------------

def config():
    from wms.plugins.manager import plugin_host
    return plugin_host().get(NAME).config()


def make_client(cfg=None):
    cfg = cfg or config()
    key, secret = (cfg.get("api_key") or "").strip(), (cfg.get("api_secret") or "").strip()
    if not key or not secret:
        raise ConfigError("not_configured", "Enter the Vinoshipper API key and secret in the plugin "
                          "settings (Account > Integrations > API Keys in Vinoshipper).")
    from flask import current_app
    return VinoshipperClient(key, secret, base_url=(cfg.get("base_url") or vs.PRODUCTION_BASE_URL).strip(),
                             timeout=(5, 20),
                             backoff_seconds=current_app.config.get("VINOSHIPPER_BACKOFF_SECONDS", 1.0))


def parse_method_map(text):
    """'WMS shipping method = UPS code' lines -> ({method lowercased: code}, [error messages])."""
    mapping, errors = {}, []
    names = {label.lower(): code for code, label in vs.UPS_RATE_CODES.items()}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        method, sep, code = line.rpartition("=")
        method, code = method.strip(), code.strip()
        if not sep or not method or not code:
            errors.append(f"Line {number} ({line!r}): write it as 'WMS shipping method = UPS code', "
                          "e.g. 'Standard Ground = 03'.")
            continue
        code = names.get(code.lower(), code.split(" ", 1)[0])
        if code not in vs.UPS_RATE_CODES:
            errors.append(f"Line {number} ({line!r}): {code!r} is not a UPS code; use one of "
                          + ", ".join(f"{c} {n}" for c, n in vs.UPS_RATE_CODES.items()) + ".")
            continue
        mapping[method.lower()] = code
    return mapping, errors


def rate_code_for(order, cfg):
    mapping, errors = parse_method_map(cfg.get("shipping_methods"))
    if errors:
        raise ConfigError("bad_mapping", "The shipping-method mapping in the Vinoshipper settings has "
                          "errors: " + " ".join(errors))
    method = (order.shipping_method or "").strip()
    code = mapping.get(method.lower()) or cfg.get("default_rate_code") or None
    if code not in vs.UPS_RATE_CODES:
        raise ConfigError("unmapped_method", f"The shipping method {method or '(none)'!r} has no UPS "
                          "code: add a line for it to the shipping-method mapping in the Vinoshipper "
                          "settings, or choose a default UPS service.")
    return code


def selected_states(cfg):
    return {s.upper() for s in cfg.get("states") or []}


def webhooks_enabled(cfg):
    return bool((cfg.get("webhook_secret") or "").strip())


# -- the sync record and its activity log ----------------------------------------------------------

def record_for(order, create=True):
    record = db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == NAME, SyncRecord.object_type == "order", SyncRecord.object_id == order.id))
    if record is None and create:
        record = SyncRecord(plugin=NAME, object_type="order", object_id=order.id, status="pending",
                            data={})
        db.session.add(record)
        db.session.flush()
    return record


def record_by_reference(order_number):
    return db.session.scalar(select(SyncRecord).where(
        SyncRecord.plugin == NAME, SyncRecord.object_type == "order",
        SyncRecord.remote_reference == str(order_number)))


def _data(record):
    return dict(record.data or {})


def log_event(record, text, **changes):
    """Append a line to the order's Vinoshipper activity log; `changes` update record.data."""
    data = _data(record)
    data.update(changes)
    events = list(data.get("events") or [])
    events.append({"at": utcnow().strftime("%Y-%m-%d %H:%M:%S"), "text": text[:500]})
    data["events"] = events[-MAX_EVENTS:]
    record.data = data


def set_status(record, status, message, event=None, **changes):
    record.status = status
    record.message = (message or "")[:2000] or None
    log_event(record, event or message, **changes)


def remote_number(order, record):
    """The Vinoshipper order number: the WMS number, made unique with the order id if an earlier
    order has the same number. Fixed on the record before the first call."""
    data = _data(record)
    if data.get("order_number"):
        return data["order_number"]
    number = (order.number or "").strip() or f"WMS-{order.id:05d}"
    shared = db.session.scalar(select(func.count()).select_from(Order).where(
        Order.number == order.number, Order.id < order.id))
    if shared:
        number = f"{number}-{order.id}"
    data["order_number"] = number
    record.data = data
    return number


# -- which orders go to Vinoshipper ----------------------------------------------------------------

def not_required_reason(order, cfg):
    """Why the order is not sent (a sentence for the card), or None when it is to be sent.

    The rule, in this order: a cancelled order; a pickup order (`is_pickup`); a point-of-sale
    carry-out (`channel == "pos"`); a refund (`financial_status` refunded or partially_refunded); an
    exchange (the word "exchange" in the order note); an order shipping outside the US or to a
    state that is not selected in the settings. Everything else ships and is sent, whatever store
    it came from, and orders created by hand too.
    """
    if order.status == "cancelled":
        return "The order is cancelled in the WMS."
    if order.is_pickup:
        return "Pickup order: the customer collects it, nothing ships."
    if (order.channel or "").lower() == "pos":
        return "Point-of-sale carry-out: the customer took the wine with them."
    if (order.financial_status or "").lower() in REFUND_STATUSES:
        return (f"Refund ({order.financial_status.replace('_', ' ')}): refunds are not sent. If this "
                "replaces a shipped order, create a new order for what ships.")
    if EXCHANGE_NOTE.search(order.note or ""):
        return "Exchange: exchanges are not sent. Create a new order for the replacement wine."
    country = (order.ship_country or "US").upper()
    if country != "US":
        return f"Ships to {country}: Vinoshipper ships within the US only."
    state = (order.ship_state or "").strip().upper()
    states = selected_states(cfg)
    if state not in states:
        label = f"{STATE_NAMES.get(state, state)} ({state})" if state else "no state"
        return (f"Ships to {label}, which is not one of the states selected for Vinoshipper"
                f"{' (none are selected)' if not states else ''}.")
    return None


def queue_send(order, *, retry_number=None):
    """Emit the send job once per order (a Retry passes a new number to send again)."""
    suffix = f":retry:{retry_number}" if retry_number is not None else ""
    return outbox.emit(TOPIC_SEND, {"order_id": order.id}, dedupe_key=f"vinoshipper:send:{order.id}{suffix}")


# -- sending ---------------------------------------------------------------------------------------

def _split_name(name, fallback=""):
    parts = (name or "").strip().split()
    if not parts:
        return fallback, fallback
    if len(parts) == 1:
        return parts[0], parts[0]
    return " ".join(parts[:-1]), parts[-1]


def order_request(order, number, cfg):
    first, last = _split_name(order.ship_name or order.customer_name)
    ship_to = Address(first_name=first, last_name=last, street1=order.ship_address1,
                      street2=order.ship_address2 or None, city=order.ship_city,
                      postal_code=order.ship_postal_code, state_code=(order.ship_state or "").upper(),
                      country=(order.ship_country or "US").upper(), phone=order.customer_phone or None)
    c_first, c_last = _split_name(order.customer_name or order.ship_name)
    customer = Customer(email=order.customer_email, first_name=c_first, last_name=c_last,
                        date_of_birth=order.customer_birth_date, phone=order.customer_phone or None)
    lines = tuple(OrderLine(line.sku, line.quantity, line.unit_price) for line in order.lines)
    return OrderRequest(
        order_number=number, customer=customer, ship_to=ship_to, lines=lines,
        rate_code=rate_code_for(order, cfg), ship_date=order.requested_ship_date,
        paid=(order.financial_status or "paid").lower() == "paid",
        producer_note=(order.note or None), meta_fields={"wmsOrderId": str(order.id),
                                                         "wmsSource": order.source or "manual"})


def send_order(payload):
    """Job: send one order, once. Safe to run again: a synced, voided or not-required order is left
    alone, and the client looks the number up before it creates."""
    order = db.session.get(Order, payload["order_id"])
    if order is None:
        return
    cfg = config()
    record = record_for(order)
    if record.status in ("synced", "voided", "not_required"):
        return
    reason = not_required_reason(order, cfg)
    if reason is not None:
        set_status(record, "not_required", reason, f"Not required to send: {reason}")
        return
    number = remote_number(order, record)
    record.attempts = (record.attempts or 0) + 1
    try:
        request_body = order_request(order, number, cfg)
        client = make_client(cfg)
    except (ConfigError, ValueError) as exc:
        message = getattr(exc, "message", str(exc))
        set_status(record, "failed", message, f"Failed to send: {message}", problems=[message])
        return
    db.session.commit()     # the number is fixed before the call: a retry looks up the same one
    try:
        sent = client.send_order(request_body)
    except VinoshipperRejected as exc:
        db.session.rollback()
        record = record_for(order)
        problems = exc.messages or [exc.message]
        set_status(record, "failed", "Vinoshipper did not accept the order.",
                   "Failed to send: " + "; ".join(problems), problems=problems,
                   problem_codes=sorted(c for c in exc.codes if c), id_scan_url=exc.id_scan_url,
                   vs_status=(exc.order or {}).get("status"))
        if exc.order:
            record.remote_reference = number
        return
    except RemoteAuthError as exc:
        db.session.rollback()
        record = record_for(order)
        set_status(record, "failed", exc.message, f"Failed to send: {exc.message}", problems=[exc.message])
        return
    except (PermanentRemoteError, ValueError) as exc:
        db.session.rollback()
        record = record_for(order)
        message = getattr(exc, "message", None) or str(exc)
        set_status(record, "failed", message, f"Failed to send: {message}", problems=[message])
        return
    except TransientRemoteError as exc:
        db.session.rollback()
        record = record_for(order)
        record.message = f"Vinoshipper could not be reached ({exc.message}); the send is retried automatically."
        log_event(record, record.message)
        db.session.commit()
        raise
    record = record_for(order)
    record.remote_reference = sent.order_number
    record.synced_at = utcnow()
    text = (f"Sent to Vinoshipper as {sent.order_number} (status {sent.status})." if sent.created else
            f"Vinoshipper already had {sent.order_number} (status {sent.status}); nothing was sent again.")
    set_status(record, "synced", f"Accepted by Vinoshipper as order {sent.order_number}.", text,
               stage="open", vs_status=sent.status, vs_order_status=sent.order_status, problems=[],
               problem_codes=[], id_scan_url=None)
    route_to_vinoshipper_process(order, record)


def route_to_vinoshipper_process(order, record):
    """Once Vinoshipper holds the order, move it to the warehouse's Vinoshipper shipping process (one
    with handler "vinoshipper"), if the warehouse has one, so it leaves the in-house pick lists."""
    from wms.core.models import ShippingProcess
    if order.shipping_process is not None and order.shipping_process.handler == NAME:
        return
    process = db.session.scalar(select(ShippingProcess).where(
        ShippingProcess.warehouse_id == order.warehouse_id, ShippingProcess.handler == NAME,
        ShippingProcess.is_active).order_by(ShippingProcess.id))
    if process is None:
        return
    try:
        order_service.route(order, order.warehouse, process)
    except ServiceError as exc:
        log_event(record, f"Left on its shipping process {order.shipping_process.name if order.shipping_process else ''}: "
                          f"{exc.message}")
        return
    log_event(record, f"Routed to the shipping process {process.name}.")


# -- person's actions ------------------------------------------------------------------------------

def retry(order, user=None):
    record = record_for(order)
    if record.status not in ("failed", "pending", "not_required"):
        raise ServiceError("not_retryable", f"The order is {record.status.replace('_', ' ')} at "
                           "Vinoshipper; there is nothing to retry.")
    if record.status == "not_required" and not _data(record).get("dont_send"):
        raise ServiceError("not_retryable", "This order is not required to send: " + (record.message or ""))
    who = getattr(user, "email", None) or "someone"
    data = _data(record)
    data.pop("dont_send", None)
    data["retries"] = int(data.get("retries") or 0) + 1
    record.data = data
    set_status(record, "pending", "Waiting to send to Vinoshipper.", f"Retry requested by {who}.")
    queue_send(order, retry_number=data["retries"])
    return record


def dont_send(order, user=None):
    record = record_for(order)
    if record.status not in ("failed", "pending"):
        raise ServiceError("not_failed", "Don't Send is for an order that failed to send; this one is "
                           f"{record.status.replace('_', ' ')}.")
    who = getattr(user, "email", None) or "someone"
    set_status(record, "not_required", f"Don't Send chosen by {who}: this order will not go to Vinoshipper.",
               dont_send=True)
    return record


def request_void(order, user=None, reason=""):
    record = record_for(order, create=False)
    if record is None or record.status not in ("synced", "failed") or not record.remote_reference:
        raise ServiceError("not_synced", "Only an order that Vinoshipper holds can be voided there.")
    stage = _data(record).get("stage")
    if stage in ("fulfilled", "shipped", "delivered"):
        raise ServiceError("not_voidable", f"Vinoshipper has {stage} this order: it can no longer be "
                           "voided through the API. Cancel it in Vinoshipper's dashboard, or handle it "
                           "as a return.")
    who = getattr(user, "email", None) or "the WMS"
    reason = (reason or "").strip() or f"Voided from the WMS by {who}"
    data = _data(record)
    data["voids"] = int(data.get("voids") or 0) + 1
    data["void_reason"] = reason[:300]
    record.data = data
    log_event(record, f"Void Sync requested by {who}: {reason}")
    outbox.emit(TOPIC_VOID, {"order_id": order.id},
                dedupe_key=f"vinoshipper:void:{order.id}:{data['voids']}")
    return record


def void_order(payload):
    """Job: cancel the order at Vinoshipper (voiding an order already cancelled there is a no-op)."""
    order = db.session.get(Order, payload["order_id"])
    record = order and record_for(order, create=False)
    if record is None or record.status == "voided" or not record.remote_reference:
        return
    reason = _data(record).get("void_reason") or "Voided from the WMS"
    try:
        status = make_client().void_order(record.remote_reference, reason)
    except (PermanentRemoteError, ConfigError) as exc:
        db.session.rollback()
        record = record_for(order)
        message = getattr(exc, "message", str(exc))
        log_event(record, f"Void Sync failed: {message}", void_error=message)
        return
    record = record_for(order)
    set_status(record, "voided", f"Voided in Vinoshipper: {status.cancel_reason or reason}",
               f"Voided in Vinoshipper by Void Sync ({status.cancel_reason or reason}).",
               stage="cancelled", vs_order_status=status.order_status, void_error=None)


# -- fulfillment coming back -----------------------------------------------------------------------

def _parse_time(value):
    """An ISO time from Vinoshipper as naive UTC (how the WMS stores times), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def vinoshipper_shipment(order):
    return next((s for s in order.shipments if s.source == NAME), None)


def _tracking_fields(numbers):
    """All tracking numbers as one comma-separated value (as many as fit the column) and a UPS link."""
    kept, length = [], 0
    for number in numbers:
        if length + len(number) + (2 if kept else 0) > 120:
            break
        kept.append(number)
        length += len(number) + (2 if len(kept) > 1 else 0)
    joined = ", ".join(kept)
    url = UPS_TRACKING_URL.format(numbers=",".join(kept)) if kept else ""
    return joined, url[:500]


def _record_shipment(order, record, status):
    shipment = vinoshipper_shipment(order)
    if shipment is not None:
        return shipment
    if order.status in ("shipped", "cancelled"):
        raise ServiceError("closed", f"The WMS order is {order.status}; the Vinoshipper shipment was not recorded.")
    shipping = status.order.get("shipping") or {}
    carrier = next((p.get("carrier") for p in shipping.get("packages") or [] if p.get("carrier")),
                   shipping.get("carrier") or "UPS")
    tracking, url = _tracking_fields(status.tracking_numbers)
    savepoint = db.session.begin_nested()      # a refusal halfway (a pick done, the next short) undoes all
    try:
        shipment = order_service.ship(order, carrier=carrier, tracking_number=tracking,
                                      tracking_url=url if carrier == "UPS" else "",
                                      service=shipping.get("rateDescription") or "",
                                      source=NAME, remote_reference=status.order_number, auto_pick=True)
    except ServiceError:
        savepoint.rollback()
        raise
    savepoint.commit()
    return shipment


def apply_status(order, record, status):
    """Bring one Vinoshipper status into the WMS. Idempotent: the same status twice changes nothing.

    Returns a sentence for the person who asked (Check Fulfillment)."""
    data = _data(record)
    old_stage = data.get("stage")
    data["checked_at"] = utcnow().isoformat(timespec="seconds")
    data["vs_status"], data["vs_order_status"] = status.status, status.order_status
    data["tracking_numbers"] = list(status.tracking_numbers)
    record.data = data
    stage = status.stage
    if record.status == "not_required":     # a person chose Don't Send: Vinoshipper's view is only shown
        return (f"Vinoshipper status: {status.status} / {status.order_status}. The order is marked Don't Send "
                "here, so nothing changes in the WMS.")
    if stage == "cancelled":
        if record.status != "voided":
            reason = status.cancel_reason or "cancelled in Vinoshipper"
            set_status(record, "voided", f"Voided in Vinoshipper: {reason}",
                       f"Vinoshipper reports the order cancelled ({reason}).", stage="cancelled")
        return "Vinoshipper has cancelled (voided) this order."
    if stage == "rejected":
        problems = [p.message for p in status.problems] or [f"Vinoshipper status {status.status}."]
        if record.status != "failed" or data.get("problems") != problems:
            set_status(record, "failed", "Vinoshipper did not accept the order.",
                       "Vinoshipper holds the order as not accepted: " + "; ".join(problems),
                       problems=problems, stage="rejected")
        return "Vinoshipper has not accepted the order: " + "; ".join(problems)
    if record.status in ("failed", "pending"):
        record.synced_at = utcnow()
        set_status(record, "synced", f"Accepted by Vinoshipper as order {status.order_number}.",
                   f"Vinoshipper accepted {status.order_number} (status {status.status}).",
                   stage="open", problems=[], problem_codes=[], id_scan_url=None)
    if stage in ("shipped", "delivered"):
        try:
            shipment = _record_shipment(order, record, status)
        except ServiceError as exc:
            message = (f"Vinoshipper has {stage} the order, but the WMS could not record the shipment: "
                       f"{exc.message}")
            if data.get("ship_error") != message:
                log_event(record, message, ship_error=message)
            return message
        if shipment.status != STAGE_TO_SHIPMENT[stage] and stage == "delivered":
            order_service.set_shipment_status(shipment, "delivered",
                                              delivered_at=_parse_time(status.delivered_at))
        if old_stage != stage or _data(record).get("ship_error"):
            numbers = ", ".join(status.tracking_numbers) or "no tracking number yet"
            text = (f"Shipped by Vinoshipper, tracking {numbers}." if stage == "shipped"
                    else f"Delivered (tracking {numbers}).")
            log_event(record, text, stage=stage, ship_error=None)
            record.message = text
        return f"Vinoshipper: {stage}, tracking {', '.join(status.tracking_numbers) or '—'}."
    if stage == "fulfilled" and old_stage != "fulfilled":
        log_event(record, "Label created at Vinoshipper: the order is fulfilled and waits for the carrier.",
                  stage="fulfilled")
        record.message = "Fulfilled: Vinoshipper created the shipping label."
        return "Vinoshipper created the label: fulfilled, not shipped yet."
    if stage == "open" and old_stage is None:
        log_event(record, "Vinoshipper holds the order, open for fulfillment.", stage="open")
    return {"open": "Vinoshipper holds the order; it is not fulfilled yet.",
            "fulfilled": "Vinoshipper created the label: fulfilled, not shipped yet."}.get(
        stage, f"Vinoshipper status: {status.order_status}.")


def check_fulfillment(order):
    """Fetch the order's latest status at Vinoshipper and apply it (the card's Check Fulfillment).

    The remote call comes before any write; returns (ok, message)."""
    record = record_for(order, create=False)
    if record is None or not record.remote_reference:
        return False, "This order was never sent to Vinoshipper."
    number = record.remote_reference
    try:
        status = make_client().get_status(number)
    except (RemoteError, ConfigError) as exc:
        return False, f"Vinoshipper: {getattr(exc, 'message', exc)}"
    record = record_for(order)
    message = apply_status(order, record, status)
    return True, message


def refresh_order(payload):
    """Job: a webhook told us something changed: fetch the order and apply its status."""
    order = db.session.get(Order, payload["order_id"])
    record = order and record_for(order, create=False)
    if record is None or not record.remote_reference:
        return
    try:
        status = make_client().get_status(record.remote_reference)
    except PermanentRemoteError as exc:
        db.session.rollback()
        record = record_for(order)
        log_event(record, f"Could not read the order from Vinoshipper: {exc.message}")
        return
    apply_status(order, record_for(order), status)


def poll(payload=None):
    """Scheduled job: check every order Vinoshipper is still fulfilling (and ones that failed only
    on age verification, which an ID upload can turn into accepted). With webhooks configured it
    only catches up on orders not checked for an hour."""
    cfg = config()
    try:
        client = make_client(cfg)
    except ConfigError:
        return 0
    from sqlalchemy import and_, or_
    stage, vs_status = SyncRecord.data["stage"].as_string(), SyncRecord.data["vs_status"].as_string()
    records = db.session.scalars(select(SyncRecord).where(
        SyncRecord.plugin == NAME, SyncRecord.object_type == "order",
        SyncRecord.remote_reference.is_not(None),
        or_(and_(SyncRecord.status == "synced", stage.in_(POLL_STAGES)),
            and_(SyncRecord.status == "failed", vs_status == vs.STATUS_AGE_VERIFICATION_FAILED)))
        .order_by(SyncRecord.id)).all()
    cutoff = (utcnow() - WEBHOOK_POLL_AFTER).isoformat(timespec="seconds")
    checked, first_error = 0, None
    for record in records:
        data = _data(record)
        if record.status == "synced" and data.get("stage") not in POLL_STAGES:
            continue
        if record.status == "failed" and data.get("vs_status") != vs.STATUS_AGE_VERIFICATION_FAILED:
            continue    # only an ID upload changes a rejected order by itself; the rest need a person
        if webhooks_enabled(cfg) and (data.get("checked_at") or "") > cutoff:
            continue
        order = db.session.get(Order, record.object_id)
        if order is None:
            continue
        try:
            status = client.get_status(record.remote_reference)
        except TransientRemoteError as exc:
            first_error = first_error or exc
            continue
        except PermanentRemoteError as exc:
            log_event(record, f"Polling could not read the order from Vinoshipper: {exc.message}")
            db.session.commit()
            continue
        apply_status(order, record, status)
        db.session.commit()
        checked += 1
    if first_error is not None:
        raise first_error
    return checked


def order_cancelled(order):
    """The WMS order was cancelled: void it at Vinoshipper if Vinoshipper holds it unshipped."""
    record = record_for(order, create=False)
    if record is None:
        return
    if record.status == "pending":
        set_status(record, "not_required", "The order was cancelled in the WMS before it was sent.")
        return
    if record.status == "synced" and _data(record).get("stage") in (None, "open"):
        request_void(order, reason="Order cancelled in the WMS")
