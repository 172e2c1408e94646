"""Webhook intake for every marketplace plugin: verify the signature on the raw body, store the delivery
once (a repeated delivery id changes nothing), answer at once, and let a job process it."""

from flask import Blueprint, jsonify, request
from sqlalchemy.dialects import postgresql, sqlite

from wms import outbox
from wms.core.models._base import utcnow
from wms.extensions import csrf, db
from wms.plugins.manager import plugin_host
from wms.plugins.models import Store, WebhookEvent

from . import access

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
access.set_blueprint_rule(bp, "public")
csrf.exempt(bp)


@bp.route("/<plugin_name>/<int:store_id>", methods=["POST"])
def receive(plugin_name, store_id):
    host = plugin_host()
    store = db.session.get(Store, store_id)
    plugin = host.get(plugin_name)
    if store is None or plugin is None or store.plugin != plugin_name or not host.is_active(plugin_name):
        return jsonify(code="unknown_store", message="No such store."), 404
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


def _store_once(plugin_name, store_id, topic, delivery_id, body):
    """Insert the delivery unless its id was seen; returns the new event id, or None for a duplicate."""
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (insert(WebhookEvent)
                 .values(plugin=plugin_name, store_id=store_id, topic=str(topic)[:120],
                         delivery_id=str(delivery_id)[:200], received_at=utcnow(),
                         payload=body.decode("utf-8", errors="replace"), status="received")
                 .on_conflict_do_nothing(index_elements=["plugin", "store_id", "delivery_id"])
                 .returning(WebhookEvent.id))
    return db.session.execute(statement).scalar()
