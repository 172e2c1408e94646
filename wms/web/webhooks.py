"""Webhook intake for every marketplace plugin: verify the signature on the raw body, store the delivery
once (a repeated delivery id changes nothing), answer at once, and let a job process it."""

from flask import Blueprint, jsonify, request
from sqlalchemy import text

from wms import outbox
from wms.core.models._base import utcnow
from wms.extensions import csrf, db
from wms.plugins.manager import plugin_host

from . import access, webhook_targets

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
access.set_blueprint_rule(bp, "public")
csrf.exempt(bp)


@bp.route("/<plugin_name>/<int:store_id>", methods=["POST"])
def receive(plugin_name, store_id):
    plugin = plugin_host().get(plugin_name)
    target = webhook_targets.active_store(plugin_name, store_id) if plugin is not None else None
    if target is None:
        return jsonify(code="unknown_store", message="No such store."), 404
    store, _plugin_state = target
    body = request.get_data(cache=False)
    if not plugin.verify_webhook(store, request.headers, body):
        return jsonify(code="bad_signature", message="The webhook signature does not match."), 401
    delivery = plugin.webhook_delivery(store, request.headers, body)
    if delivery is None:
        return jsonify(ok=True, ignored=True)
    topic, delivery_id = delivery
    event_id = _store_once(plugin_name, store_id, topic, delivery_id, body)
    if event_id is None:
        return jsonify(ok=True, duplicate=True)
    outbox.emit("webhook.received", {"event_id": event_id})
    db.session.commit()
    return jsonify(ok=True)


# A fixed statement (ON CONFLICT ... DO NOTHING reads the same on SQLite and PostgreSQL): the intake
# is the busiest write path after stock postings.
_INSERT_ONCE = text(
    "INSERT INTO webhook_event (plugin, store_id, topic, delivery_id, received_at, payload, status) "
    "VALUES (:plugin, :store_id, :topic, :delivery_id, :received_at, :payload, 'received') "
    "ON CONFLICT (plugin, store_id, delivery_id) DO NOTHING RETURNING id")


def _store_once(plugin_name, store_id, topic, delivery_id, body):
    """Insert the delivery unless its id was seen; returns the new event id, or None for a duplicate."""
    return db.session.connection().execute(_INSERT_ONCE, {
        "plugin": plugin_name, "store_id": store_id, "topic": str(topic)[:120], "delivery_id": str(delivery_id)[:200],
        "received_at": utcnow(), "payload": body.decode("utf-8", errors="replace")}).scalar()
