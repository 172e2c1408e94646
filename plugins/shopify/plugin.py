"""Shopify: stores connected by OAuth; orders in by webhook (and a periodic reconciliation); stock out
in Absolute or Delta mode; tracking back as fulfillments; optional returns; product sync and tags
(`catalog.py`, `returns.py`, `tags.py`).

Work for one store arrives as plain method calls from the core (`push_stock`, `handle_webhook`,
`tag_order`, ...); the hooks below contribute jobs, schedules and the blueprint.
"""

import json

from wms.plugins import MarketplacePlugin, MenuItem, Panel, ScheduledJob, Setting, hookimpl

from . import connection, fulfillment, orders, stock
from .client import verify_webhook as signature_matches
from .views import bp

FINANCIAL_STATUSES = (("pending", "Pending"), ("authorized", "Authorized"), ("partially_paid", "Partially paid"),
                      ("paid", "Paid"), ("partially_refunded", "Partially refunded"), ("refunded", "Refunded"),
                      ("voided", "Voided"))
FULFILLMENT_STATUSES = (("unfulfilled", "Unfulfilled"), ("partial", "Partially fulfilled"),
                        ("fulfilled", "Fulfilled"))
ORDER_STATUSES = (("open", "Open orders only (not cancelled, not closed)"), ("any", "Any order"))
RECONCILE_SECONDS = 300
DEMO_CLIENT_ID = "wms-demo-app"
DEMO_CLIENT_SECRET = "shpss_demo_secret_for_the_sandbox"


class ShopifyPlugin(MarketplacePlugin):
    name = "shopify"
    title = "Shopify"
    description = ("Shopify stores connected by OAuth: orders by webhook, stock in Absolute or Delta mode, "
                   "tracking back to the customer, product mapping and optional returns.")
    settings = (
        Setting("client_id", "App client ID", required=True,
                help="The Client ID of your app in the Shopify Dev Dashboard (Settings)."),
        Setting("client_secret", "App client secret", "secret", required=True,
                help="The app's Secret; it signs OAuth callbacks and webhooks."),
        Setting("app_url", "App public URL", "url",
                help="The address where Shopify reaches this WMS, such as https://wms.example.com. "
                     "Callbacks go to <URL>/plugins/shopify/oauth/callback and webhooks to "
                     "<URL>/webhooks/shopify/<store id>. Empty: the WMS's own public URL."),
    )
    store_settings = (
        Setting("stock_sync", "Stock sync", "bool", default=False,
                help="Push WMS stock to Shopify. Off until you have checked the location and product mapping."),
        Setting("stock_mode", "Stock mode", "choice", default="delta",
                choices=(("delta", "Delta: send only the change (recommended at first)"),
                         ("absolute", "Absolute: overwrite Shopify's available"))),
        Setting("push_window_seconds", "Grouping window (seconds)", "int",
                help="Changes inside this window go to Shopify in one push. Empty: the WMS default (30 s)."),
        Setting("order_status", "Orders to import", "choice", default="open", choices=ORDER_STATUSES),
        Setting("financial_status", "Financial status", "multichoice", default=[], choices=FINANCIAL_STATUSES,
                help="Import only orders with one of these payment states. None ticked: any."),
        Setting("fulfillment_status", "Fulfillment status", "multichoice", default=[],
                choices=FULFILLMENT_STATUSES,
                help="Import only orders in one of these fulfillment states. None ticked: any."),
        Setting("notify_customer", "Email tracking to the customer", "bool", default=True,
                help="Shopify sends its shipping confirmation when the WMS ships an order."),
        Setting("return_sync", "Return sync", "bool", default=False,
                help="Shopify returns appear in the WMS as expected returns."),
        Setting("auto_close", "Close automatically", "bool", default=False,
                help="Once a return is received, close it (and the order) in Shopify."),
    )
    guide_template = "shopify/guide.html"
    add_store_endpoint = "shopify.add_store"
    sandbox = "plugins.shopify.sandbox:create_app"
    blueprint = bp

    def sandbox_config(self, app):
        """The demo sandbox knows the app configured here (or the demo app, before any is configured)."""
        with app.app_context():
            config = self.config()
        client_id = config.get("client_id") or DEMO_CLIENT_ID
        secret = config.get("client_secret") or DEMO_CLIENT_SECRET
        return {"apps": {client_id: secret}, "shops": ["demo-winery.myshopify.com"], "allow_http_webhooks": True}

    # -- one store ------------------------------------------------------------------------------------
    def test_connection(self, store=None):
        client_id, secret = connection.app_credentials()
        if not client_id or not secret:
            return False, "Enter the app's client ID and secret and save first."
        if store is None:
            return True, ("The app's credentials are saved. Add a store to connect a shop; its callback URL is "
                          f"{connection.callback_url()}.")
        info = connection.client_for(store).shop_info()
        return True, f"{info['name']} ({info['myshopify_domain']}, {info['plan']} plan, {info['currency']})."

    def remote_locations(self, store):
        return [(loc["id"], loc["name"] + ("" if loc["is_active"] else " (inactive)"))
                for loc in connection.client_for(store).list_locations()]

    def push_stock(self, store, items):
        return stock.push_stock(store, items)

    def verify_webhook(self, store, headers, body):
        _, secret = connection.app_credentials()
        return bool(secret) and signature_matches(body, headers.get("X-Shopify-Hmac-Sha256"), secret)

    def webhook_delivery(self, store, headers, body):
        topic = headers.get("X-Shopify-Topic", "")
        delivery = headers.get("X-Shopify-Event-Id") or headers.get("X-Shopify-Webhook-Id")
        if not topic or not delivery:
            return None
        return topic, f"{topic}:{delivery}"

    def handle_webhook(self, store, event):
        payload = json.loads(event.payload)
        if event.topic.startswith("returns/"):
            from . import returns
            return returns.handle_webhook(store, event.topic, payload)
        return orders.handle_event(store, event.topic, payload)

    def tag_order(self, store, order, tags, note=None):
        from . import tags as shopify_tags
        return shopify_tags.tag_order(store, order, tags, note)

    def tag_product(self, store, mapping, tags, remove_tags=()):
        from . import tags as shopify_tags
        return shopify_tags.tag_product(store, mapping, tags, remove_tags)

    # -- hooks ----------------------------------------------------------------------------------------
    @hookimpl
    def wms_job_handlers(self):
        from . import catalog, returns
        handlers = {
            connection.SUBSCRIBE_TOPIC: connection.subscribe_job,
            orders.RECONCILE_TOPIC: orders.reconcile_job,
            orders.RECONCILE_STORE_TOPIC: orders.reconcile_store_job,
            fulfillment.TOPIC: fulfillment.fulfill_job,
        }
        return {**catalog.JOB_HANDLERS, **returns.JOB_HANDLERS, **handlers}

    @hookimpl
    def wms_scheduled_jobs(self):
        return [ScheduledJob("shopify.reconcile_orders", orders.RECONCILE_TOPIC, RECONCILE_SECONDS)]

    @hookimpl
    def wms_shipment_status_changed(self, shipment, old, new):
        fulfillment.shipment_changed(shipment, old, new)

    @hookimpl
    def wms_store_saved(self, store, created):
        if store is not None and store.plugin == self.name:
            connection.store_saved(store)
            if store.status == "connected":
                stock.record_baselines(store)

    @hookimpl
    def wms_panels(self, page, obj, user):
        if page != "order" or obj is None or not obj.store_id:
            return []
        html = fulfillment.order_panel(obj)
        return [Panel("Shopify", html, order=40)] if html else []

    @hookimpl
    def wms_admin_menu(self, user):
        return [MenuItem("shopify.stores", "Shopify", order=40)]


plugin = ShopifyPlugin()
