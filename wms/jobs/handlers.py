"""Outbox topics and what handles them: core events become hook calls on the active plugins;
plugins add their own topics through `wms_job_handlers`."""

import json

from sqlalchemy import select

from wms.core.models import Order, Shipment, ShippingProcess
from wms.extensions import db
from wms.plugins.manager import plugin_host
from wms.plugins.models import ProductMapping, Store, WebhookEvent


def _order(payload):
    return db.session.get(Order, payload["order_id"])


def order_created(payload):
    plugin_host().hooks.wms_order_created(order=_order(payload))


def order_routed(payload):
    process = db.session.get(ShippingProcess, payload["shipping_process_id"])
    plugin_host().hooks.wms_order_routed(order=_order(payload), shipping_process=process)


def order_cancelled(payload):
    plugin_host().hooks.wms_order_cancelled(order=_order(payload))


def shipment_status_changed(payload):
    shipment = db.session.get(Shipment, payload["shipment_id"])
    plugin_host().hooks.wms_shipment_status_changed(shipment=shipment, old=payload.get("old"),
                                                   new=payload["new"])


def store_saved(payload):
    store = db.session.get(Store, payload["store_id"])
    plugin_host().hooks.wms_store_saved(store=store, created=payload.get("created", False))


def webhook_received(payload):
    event = db.session.get(WebhookEvent, payload["event_id"])
    if event is None or event.status == "processed":
        return
    store = db.session.get(Store, event.store_id)
    plugin_host().plugin_for(store).handle_webhook(store, event)
    event.status, event.error = "processed", None
    from wms.core.models._base import utcnow
    event.processed_at = utcnow()


def order_tag_requested(payload):
    """Tags from any plugin for an order, applied by the plugin of the store the order came from."""
    order = _order(payload)
    store = db.session.get(Store, order.store_id) if order and order.store_id else None
    if store is None:
        return
    plugin = _active_marketplace(store)
    if plugin is not None:
        plugin.tag_order(store, order, list(payload.get("tags", [])), payload.get("note"))


def product_tag_requested(payload):
    """Tags for a product, applied in every store that maps it."""
    mappings = db.session.scalars(select(ProductMapping).where(
        ProductMapping.product_id == payload["product_id"]).order_by(ProductMapping.store_id)).all()
    for mapping in mappings:
        store = db.session.get(Store, mapping.store_id)
        plugin = _active_marketplace(store)
        if plugin is not None:
            plugin.tag_product(store, mapping, list(payload.get("tags", [])), list(payload.get("remove_tags", [])))


def _active_marketplace(store):
    host = plugin_host()
    plugin = host.get(store.plugin)
    if plugin is None or plugin.kind != "marketplace" or not host.is_active(store.plugin):
        return None
    return plugin


def stock_push(payload):
    from .stock_push import push_store
    push_store(payload["store_id"])


CORE_HANDLERS = {
    "order.created": order_created,
    "order.routed": order_routed,
    "order.cancelled": order_cancelled,
    "shipment.status_changed": shipment_status_changed,
    "store.saved": store_saved,
    "webhook.received": webhook_received,
    "stock.push": stock_push,
    "order.tag_requested": order_tag_requested,
    "product.tag_requested": product_tag_requested,
}


def handler_for(topic):
    if topic in CORE_HANDLERS:
        return CORE_HANDLERS[topic]
    for handlers in plugin_host().hooks.wms_job_handlers():
        if handlers and topic in handlers:
            return handlers[topic]
    return None


def payload_json(event):
    return json.loads(event.payload)
