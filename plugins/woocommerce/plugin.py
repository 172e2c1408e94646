"""WooCommerce: stores connected by a read/write REST API key over HTTPS.

Product and variation sync by SKU, stock both ways (the WMS or WooCommerce is the authority, per
store), paid orders by signed webhook and by poll, orders from elsewhere mirrored into the store,
tracking back to the customer, and sync status per object. The work is in `catalog.py`,
`stock.py` and `orders.py`; hooks only record work as outbox messages.
"""

import json
import os

from flask import render_template, url_for

from wms.plugins import MarketplacePlugin, MenuItem, Panel, ScheduledJob, Setting, hookimpl

from . import catalog, orders, stock
from . import store as woo_store
from .client import PLUGIN, verify_webhook_signature, webhook_ping_id
from .views import bp

ORDER_STATUS_CHOICES = (("processing", "Processing (paid)"), ("completed", "Completed (paid)"),
                        ("on-hold", "On hold (awaiting payment, such as a bank transfer)"))


class WooCommercePlugin(MarketplacePlugin):
    name = PLUGIN
    title = "WooCommerce"
    description = ("WooCommerce stores connected by a REST API key over HTTPS: products and variations by SKU, "
                   "stock pushed or pulled, paid orders by signed webhook and poll, order mirroring and tracking.")
    store_settings = (
        Setting("consumer_key", "Consumer key", "secret", required=True,
                help="Starts with ck_: WooCommerce → Settings → Advanced → REST API, Read/Write permission."),
        Setting("consumer_secret", "Consumer secret", "secret", required=True, help="Starts with cs_."),
        Setting("query_string_auth", "Send keys in the query string", "bool", default=False,
                help="Only for hosts that strip the Authorization header (WooCommerce then says the key is wrong)."),
        Setting("stock_authority", "Stock authority", "choice", default="wms",
                choices=(("wms", "The WMS: push stock to WooCommerce"),
                         ("woocommerce", "WooCommerce: pull its stock into the WMS")),
                help="Which side is the source of truth for this store's stock."),
        Setting("stock_mode", "Push mode", "choice", default="absolute", choices=MarketplacePlugin.stock_modes,
                help="When the WMS is the authority."),
        Setting("stock_pull_minutes", "Pull stock every (minutes)", "int", default=woo_store.DEFAULT_PULL_MINUTES,
                help="When WooCommerce is the authority: 5 to 15."),
        Setting("order_statuses", "Import orders in these statuses", "multichoice",
                default=list(woo_store.PAID_STATUSES), choices=ORDER_STATUS_CHOICES),
        Setting("order_poll_minutes", "Poll orders every (minutes)", "int", default=woo_store.DEFAULT_POLL_MINUTES,
                help="Catches orders whose webhook delivery failed; WooCommerce never retries one."),
        Setting("mirror_orders", "Mirror orders to Woo", "bool", default=False,
                help="Orders from other stores and from the WMS are created in this store as processing."),
        Setting("mirror_customer", "Mirrored orders' customer", "choice", default="match",
                choices=(("match", "Match or create a WooCommerce customer by email"),
                         ("shared", "Attach every mirrored order to one shared customer"))),
        Setting("shared_customer_email", "Shared customer email", "string", default="",
                help="The shared customer's email, when mirrored orders use one shared customer."),
        Setting("weight_unit", "Store weight unit", "choice", default="kg",
                choices=(("kg", "kg"), ("g", "g"), ("lbs", "lbs"), ("oz", "oz")),
                help="As set under WooCommerce → Settings → Products; weights are converted to grams."),
        Setting("webhook_secret", "Webhook secret", "secret",
                help="Made when the store is connected; WooCommerce signs every delivery with it."),
    )
    guide_template = "woocommerce/guide.html"
    settings_template = "woocommerce/_plugin_stores.html"
    add_store_endpoint = "woocommerce.add_store"
    sandbox = "plugins.woocommerce.sandbox:create_app"
    blueprint = bp

    def sandbox_config(self, app):
        return {"consumer_key": "ck_demo", "consumer_secret": "cs_demo"}

    def sandbox_ssl_context(self, app):
        """The demo sandbox serves HTTPS with a CA of its own, in the instance folder; `ca_bundle`
        finds the CA file there, so the client verifies the demo store as it verifies a real one."""
        from .sandbox import make_tls
        folder = os.path.join(app.instance_path, woo_store.DEMO_TLS_FOLDER)
        os.makedirs(folder, exist_ok=True)
        context, _ = make_tls(folder)
        return context

    def test_connection(self, store=None):
        if store is None:
            return True, "nothing to test plugin-wide: each store has its own key; test it on the store's page."
        return True, woo_store.connect(store)

    # -- per store ------------------------------------------------------------------------------
    def push_stock(self, store, items):
        return stock.push_stock(store, items)

    def verify_webhook(self, store, headers, body):
        if webhook_ping_id(body) is not None and not headers.get("X-WC-Webhook-Signature"):
            return True  # the unsigned creation ping: acknowledged and dropped by webhook_delivery
        secret = woo_store.credentials(store).get("webhook_secret")
        return verify_webhook_signature(body, headers.get("X-WC-Webhook-Signature"), secret)

    def webhook_delivery(self, store, headers, body):
        """(topic, delivery id); an order's delivery id is its id and modified time, so a repeated
        delivery of the same version is stored once."""
        if webhook_ping_id(body) is not None and not headers.get("X-WC-Webhook-Signature"):
            return None
        topic = headers.get("X-WC-Webhook-Topic", "")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        if topic.startswith("order.") and isinstance(payload, dict) and payload.get("id"):
            return topic, f"order:{payload['id']}:{payload.get('date_modified_gmt') or ''}"
        return topic, headers.get("X-WC-Webhook-Delivery-ID", "")

    def handle_webhook(self, store, event):
        orders.handle_order_event(store, event)

    def tag_order(self, store, order, tags, note=None):
        return orders.tag_order(store, order, tags, note)

    def tag_product(self, store, mapping, tags, remove_tags=()):
        return orders.tag_product(store, mapping, tags, remove_tags)

    # -- hooks ----------------------------------------------------------------------------------
    @hookimpl
    def wms_job_handlers(self):
        return {catalog.SYNC_TOPIC: catalog.sync_products_job, stock.PULL_TOPIC: stock.pull_stock_job,
                orders.POLL_TOPIC: orders.poll_orders_job, orders.MIRROR_TOPIC: orders.mirror_order_job,
                orders.TRACKING_TOPIC: orders.push_tracking_job, orders.CANCEL_MIRROR_TOPIC: orders.cancel_mirror_job}

    @hookimpl
    def wms_scheduled_jobs(self):
        jobs = []
        for store in woo_store.woo_stores():
            jobs.append(ScheduledJob(f"woocommerce.orders.{store.id}", orders.POLL_TOPIC,
                                     woo_store.poll_minutes(store) * 60, {"store_id": store.id}))
            if woo_store.woo_is_authority(store):
                jobs.append(ScheduledJob(f"woocommerce.stock.{store.id}", stock.PULL_TOPIC,
                                         woo_store.pull_minutes(store) * 60, {"store_id": store.id}))
        return jobs

    @hookimpl
    def wms_store_saved(self, store, created):
        if store is not None and store.plugin == PLUGIN:
            woo_store.sync_push_flag(store)

    @hookimpl
    def wms_order_created(self, order):
        if order is not None:
            orders.queue_mirrors(order)

    @hookimpl
    def wms_order_cancelled(self, order):
        if order is not None:
            orders.queue_mirror_cancels(order)

    @hookimpl
    def wms_shipment_status_changed(self, shipment, old, new):
        if shipment is not None and old is None:
            orders.queue_tracking(shipment)

    @hookimpl
    def wms_admin_menu(self, user):
        return [MenuItem("woocommerce.stores", "WooCommerce", order=40)]

    @hookimpl
    def wms_panels(self, page, obj, user):
        if obj is None or page not in ("order", "product"):
            return []
        rows = sync_rows(page, obj)
        if not rows:
            return []
        html = render_template("woocommerce/sync_panel.html", rows=rows, page=page)
        return [Panel("WooCommerce", html, order=40)]

    def dashboard_url(self):
        return url_for("woocommerce.stores")


def sync_rows(page, obj):
    """(store, record) pairs for the object's page: its sync state in each WooCommerce store."""
    from sqlalchemy import select

    from wms.extensions import db
    from wms.plugins.models import Store, SyncRecord
    kinds = ("order", "cancel") if page == "order" else ("product",)
    records = db.session.scalars(select(SyncRecord).where(
        SyncRecord.plugin == PLUGIN, SyncRecord.object_id == obj.id,
        SyncRecord.object_type.in_([f"{k}@{s.id}" for k in kinds for s in woo_store.woo_stores(False)]))
        .order_by(SyncRecord.id)).all()
    stores = {s.id: s for s in db.session.scalars(select(Store).where(Store.plugin == PLUGIN))}
    return [(stores.get(r.store_id), r) for r in records if stores.get(r.store_id)]


plugin = WooCommercePlugin()
