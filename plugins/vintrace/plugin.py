"""Vintrace: one-way, real-time Sales Order push from the WMS to a winery's Vintrace.

Every order created in the WMS (from any store, the API or by hand) becomes one Sales Order in
Vintrace for the configured customer and sales price list, after a strict check of each line
against the Vintrace product with its SKU (see `sync.py`). Nothing comes back from Vintrace.
"""

from flask import render_template

from wms.plugins import FulfillmentPlugin, MenuItem, Panel, Setting, hookimpl

from . import sync
from .views import bp


class VintracePlugin(FulfillmentPlugin):
    name = "vintrace"
    title = "Vintrace"
    description = ("One-way, real-time Sales Order push to Vintrace: each new order is sent once, at "
                   "creation, with strict product matching, order tags and automatic retry.")
    settings = (
        Setting("api_key", "API key", "secret", required=True,
                help="A Vintrace API token of the integration user (Vintrace: Manage and create API tokens)."),
        Setting("base_url", "Vintrace URL", "url", required=True,
                help="Your own Vintrace address, as shown after logging in, such as https://oz50.vintrace.net/vinx2/."),
        Setting("customer_name", "Vintrace customer name", required=True,
                help="The Vintrace customer every Sales Order is for; must exist in Vintrace, spelled exactly."),
        Setting("price_list", "Sales price list", required=True,
                help="The Vintrace sales price list; each line's price must equal the product's price in it."),
        Setting("storage_area_id", "Storage area ID", "int",
                help="Optional: the Vintrace storage area the stock is sold from."),
    )
    guide_template = "vintrace/guide.html"
    settings_template = "vintrace/_settings_fragment.html"
    sandbox = "plugins.vintrace.sandbox:create_app"
    blueprint = bp

    def sandbox_config(self, app):
        return {"seed": "demo"}

    def test_connection(self, store=None):
        config = self.config()
        missing = [label for key, label in sync.REQUIRED[:2] if not config.get(key)]
        if missing:
            return False, "Fill in " + " and ".join(missing) + " and save first."
        client = sync.make_client(config)
        client.test_connection()
        notes = []
        if config.get("customer_name") and client.find_customer(config["customer_name"]) is None:
            notes.append(f"customer '{config['customer_name']}' does not exist in Vintrace")
        if config.get("price_list") and client.find_price_list(config["price_list"]) is None:
            notes.append(f"price list '{config['price_list']}' does not exist in Vintrace")
        if notes:
            return False, "Vintrace answered, but " + " and ".join(notes) + "."
        return True, f"Vintrace answered at {client.base_url}."

    # -- hooks ------------------------------------------------------------------------------------
    @hookimpl
    def wms_order_created(self, order):
        if order is not None:
            sync.queue_push(order)

    @hookimpl
    def wms_job_handlers(self):
        return {sync.PUSH_TOPIC: sync.push_order_job}

    @hookimpl
    def wms_admin_menu(self, user):
        return [MenuItem("vintrace.settings", "Vintrace", order=60)]

    @hookimpl
    def wms_panels(self, page, obj, user):
        if page != "order" or obj is None:
            return []
        record = sync.record_for(obj, create=False)
        html = render_template("vintrace/order_panel.html", order=obj, record=record, user=user,
                               tag_created=sync.TAG_CREATED, tag_error=sync.TAG_ERROR)
        return [Panel("Vintrace", html, order=50)]


plugin = VintracePlugin()
