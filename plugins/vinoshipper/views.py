"""Vinoshipper pages and actions: the dashboard, the order card's actions, and the webhook receiver.

    GET  /plugins/vinoshipper/                               dashboard (admin)
    POST /plugins/vinoshipper/orders/<id>/retry              Retry a failed send (operator)
    POST /plugins/vinoshipper/orders/<id>/dont-send          Don't Send (operator)
    POST /plugins/vinoshipper/orders/<id>/void               Void Sync (operator)
    POST /plugins/vinoshipper/orders/<id>/check              Check Fulfillment at Vinoshipper (operator)
    POST /plugins/vinoshipper/webhook                        Vinoshipper's webhooks (public, no CSRF)

Actions commit and redirect back to the order page with a flash; a refused action changes nothing.
"""

import hmac

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from wms import outbox
from wms.core.errors import ServiceError
from wms.core.models import Order
from wms.extensions import csrf, db
from wms.plugins.models import ActivityLog, SyncRecord
from wms.web import access
from wms.web.integrations import failed_work, recent_calls

from . import contract as vs
from . import sync
from .client import InvalidWebhook, quote_number, read_webhook

bp = Blueprint("vinoshipper", __name__, url_prefix="/plugins/vinoshipper", template_folder="templates",
               static_folder="static")

HEADLINES = {
    "pending": "Waiting to Send",
    "synced": "Sent to Vinoshipper",
    "failed": "Failed to Send",
    "not_required": "Not Required to Send",
    "voided": "Voided in Vinoshipper",
}
STAGE_LABELS = {
    "open": "Accepted, waiting for fulfillment",
    "fulfilled": "Fulfilled: label created",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "rejected": "Not accepted",
}


def _back(order):
    return redirect(url_for("orders.detail", order_id=order.id))


def _order_calls(number, limit=20):
    if not number:
        return []
    escaped = quote_number(number).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return db.session.scalars(
        select(ActivityLog).where(ActivityLog.plugin == sync.NAME,
                                  ActivityLog.path.like(f"%/orders/{escaped}%", escape="\\"))
        .order_by(ActivityLog.at.desc(), ActivityLog.id.desc()).limit(limit)).all()


def card_context(order):
    """What the order card shows: the headline, reasons, actions and the order's activity log."""
    record = sync.record_for(order, create=False)
    data = dict(record.data or {}) if record else {}
    status = record.status if record else None
    stage = data.get("stage")
    refund_or_exchange = ((order.financial_status or "") in sync.REFUND_STATUSES
                          or bool(sync.EXCHANGE_NOTE.search(order.note or "")))
    return {
        "order": order, "record": record, "data": data, "status": status,
        "headline": HEADLINES.get(status, "Not Sent Yet"),
        "stage": stage, "stage_label": STAGE_LABELS.get(stage, stage or ""),
        "events": list(reversed(data.get("events") or [])),
        "calls": _order_calls(record.remote_reference if record else None),
        "can_retry": status in ("failed", "pending") or (status == "not_required" and data.get("dont_send")),
        "can_dont_send": status in ("failed", "pending"),
        "can_void": status in ("synced", "failed") and bool(record and record.remote_reference)
                    and stage in (None, "open", "rejected"),
        "can_check": bool(record and record.remote_reference),
        "needs_void_guidance": status == "synced" and stage in (None, "open") and refund_or_exchange,
        "shipment": sync.vinoshipper_shipment(order),
    }


def _run(order, action, success):
    try:
        action()
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _back(order)
    flash(success, "success")
    return _back(order)


@bp.post("/orders/<int:order_id>/retry")
@access.operator
def retry(order_id):
    order = db.get_or_404(Order, order_id)
    return _run(order, lambda: sync.retry(order, current_user),
                f"Order {order.number} will be sent to Vinoshipper again.")


@bp.post("/orders/<int:order_id>/dont-send")
@access.operator
def dont_send(order_id):
    order = db.get_or_404(Order, order_id)
    return _run(order, lambda: sync.dont_send(order, current_user),
                f"Order {order.number} will not be sent to Vinoshipper.")


@bp.post("/orders/<int:order_id>/void")
@access.operator
def void(order_id):
    order = db.get_or_404(Order, order_id)
    reason = (request.form.get("reason") or "")[:300]
    return _run(order, lambda: sync.request_void(order, current_user, reason),
                f"Void Sync of order {order.number} requested; the card shows Voided in Vinoshipper "
                "once Vinoshipper confirms.")


@bp.post("/orders/<int:order_id>/check")
@access.operator
def check(order_id):
    order = db.get_or_404(Order, order_id)
    ok, message = sync.check_fulfillment(order)
    if ok:
        db.session.commit()
        flash(message, "success")
    else:
        db.session.rollback()
        flash(message, "error")
    return _back(order)


# -- webhooks ---------------------------------------------------------------------------------------

def _authentic(secret):
    """A delivery is ours when it is signed with the secret, or carries it as ?token= (Vinoshipper's
    webhook form takes only a URL; the Integration Guide says which to use)."""
    signature = request.headers.get(vs.WEBHOOK_SIGNATURE_HEADER)
    token = request.args.get("token", "")
    if signature:
        return "signature"
    if token and hmac.compare_digest(token.encode(), secret.encode()):
        return "token"
    return None


@bp.post("/webhook")
@access.public
@csrf.exempt
def webhook():
    cfg = sync.config()
    secret = (cfg.get("webhook_secret") or "").strip()
    if not secret:
        return {"error": "Vinoshipper webhooks are not configured in this WMS (no webhook secret)."}, 404
    raw = request.get_data(cache=False)
    how = _authentic(secret)
    if how is None:
        return {"error": "The webhook is not signed with the configured secret."}, 401
    try:
        event = read_webhook(raw, signature=request.headers.get(vs.WEBHOOK_SIGNATURE_HEADER),
                             secret=secret if how == "signature" else None)
    except InvalidWebhook as exc:
        return {"error": str(exc)}, 401 if "signature" in str(exc) else 400
    if event.subject != vs.WEBHOOK_SUBJECT_ORDER:
        return {"ignored": f"{event.subject} events are not used"}, 200
    record = sync.record_by_reference(event.identifier)
    if record is None:
        return {"ignored": f"order {event.identifier} was not sent by this WMS"}, 200
    stage = (record.data or {}).get("stage") or record.status
    outbox.emit(sync.TOPIC_REFRESH, {"order_id": record.object_id, "identifier": event.identifier,
                                     "event": event.event},
                dedupe_key=f"vinoshipper:webhook:{event.identifier}:{event.event}:{stage}")
    db.session.commit()
    return {"received": True}, 200


# -- dashboard --------------------------------------------------------------------------------------

@bp.get("/")
def dashboard():
    counts = dict(db.session.execute(
        select(SyncRecord.status, func.count()).where(SyncRecord.plugin == sync.NAME,
                                                      SyncRecord.object_type == "order")
        .group_by(SyncRecord.status)).all())
    attention = db.session.execute(
        select(SyncRecord, Order).join(Order, Order.id == SyncRecord.object_id)
        .where(SyncRecord.plugin == sync.NAME, SyncRecord.object_type == "order",
               or_(SyncRecord.status.in_(("failed", "pending")),
                   SyncRecord.data["ship_error"].as_string().is_not(None)))
        .order_by(SyncRecord.updated_at.desc()).limit(100)).all()
    recent = db.session.execute(
        select(SyncRecord, Order).join(Order, Order.id == SyncRecord.object_id)
        .where(SyncRecord.plugin == sync.NAME, SyncRecord.object_type == "order")
        .order_by(SyncRecord.updated_at.desc()).limit(50)).all()
    cfg = sync.config()
    mapping, mapping_errors = sync.parse_method_map(cfg.get("shipping_methods"))
    return render_template(
        "vinoshipper/dashboard.html", counts=counts, attention=attention, recent=recent,
        headlines=HEADLINES, stage_labels=STAGE_LABELS, states=sorted(sync.selected_states(cfg)),
        mapping=mapping, mapping_errors=mapping_errors, webhooks=sync.webhooks_enabled(cfg),
        calls=recent_calls(plugin=sync.NAME, limit=50), failures=failed_work("vinoshipper.", limit=50))
