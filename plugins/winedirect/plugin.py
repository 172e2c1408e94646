"""The WineDirect Fulfillment plugin: a 3PL that takes orders routed to its shipping processes,
reports their status and shipments, holds inventory in its warehouses and keeps wine SKUs.

Hooks only record work (outbox messages with dedupe keys); the jobs in `sync.py` call the API
through `client.py`. Settings are plugin-wide: one WineDirect account per WMS.
"""

from flask import render_template, url_for

from wms import outbox
from wms.extensions import db
from wms.plugins import FulfillmentPlugin, MenuItem, Panel, ScheduledJob, Setting, hookimpl

from . import contract as c
from . import sync
from .views import bp

SHIPPING_METHODS = (
    ("UPSGROUND", "Ground (UPS Ground)"),
    ("FEDGROUND", "Ground (FedEx Ground)"),
    ("UPS2DAY", "2-Day (UPS 2nd Day Air)"),
    ("UPSOVERNIGHT", "Overnight (UPS Next Day Air)"),
    ("WILLCALL", "Will call (pickup at the warehouse)"),
)


class WineDirectPlugin(FulfillmentPlugin):
    name = "winedirect"
    title = "WineDirect Fulfillment"
    description = ("WineDirect's 3PL warehouses: orders routed to a WineDirect shipping process are submitted "
                   "to WineDirect, their status, shipments and tracking come back, inventory is pulled per "
                   "warehouse and wine SKUs are created from WMS products.")
    settings = (
        Setting("api_url", "API address", "url", required=True, default=c.DEFAULT_API_URL,
                help="The WineDirect Fulfillment API of your environment (UAT or Production)."),
        Setting("username", "Username", required=True, help="The API login WineDirect gave you."),
        Setting("password", "Password", "secret", required=True),
        Setting("account_name", "Account name", required=True),
        Setting("account_number", "Account number", required=True,
                help="Your customer ID at WineDirect (orders, shipments, inventory)."),
        Setting("supplier_name", "Supplier name", required=True),
        Setting("supplier_id", "Supplier ID", required=True,
                help="Also called vendor ID; not the account number (products)."),
        Setting("default_warehouse", "Default warehouse", "choice", default="PSO",
                choices=tuple((code, f"{w['warehouseName']} ({w['stateCode']})")
                              for code, w in c.WAREHOUSES.items()),
                help="Where an order goes when its WMS warehouse is not a WineDirect warehouse."),
        Setting("default_shipping_method", "Default shipping method", "choice", default="UPSGROUND",
                choices=SHIPPING_METHODS,
                help="Sent when the order's shipping method does not name a WineDirect service level."),
        Setting("packing_slip_template", "Packing slip template", default="",
                help="WineDirect packing slip code; blank uses the account's default."),
        Setting("inventory_auto_sync", "Inventory auto-sync", "bool", default=True,
                help="Pull inventory (and shipments first) from WineDirect on a schedule."),
        Setting("inventory_sync_minutes", "Auto-sync interval (minutes)", "int", default=60),
        Setting("shipment_sync_minutes", "Shipment sync interval (minutes)", "int", default=15),
    )
    guide_template = "winedirect/guide.html"
    blueprint = bp
    sandbox = "plugins.winedirect.sandbox:create_app"

    def test_connection(self, store=None):
        client = sync.client()
        check = client.test_connection()
        sync.note_connection(client, ok=check.ok, message=check.message, refreshes_before=client.token_refreshes)
        db.session.commit()
        return check.ok, check.message

    # -- hooks -----------------------------------------------------------------------------
    @hookimpl
    def wms_order_routed(self, order, shipping_process):
        if not self.handles(shipping_process):
            return
        sync.queue_order(order)

    @hookimpl
    def wms_order_cancelled(self, order):
        if order.shipping_process is not None and self.handles(order.shipping_process):
            outbox.emit("winedirect.cancel_order", {"order_id": order.id},
                        dedupe_key=f"winedirect:cancel:{order.id}")

    @hookimpl
    def wms_job_handlers(self):
        return {
            "winedirect.submit_orders": sync.submit_orders_job,
            "winedirect.order_status": sync.order_status_job,
            "winedirect.cancel_order": sync.cancel_order_job,
            "winedirect.sync_shipments": sync.sync_shipments_job,
            "winedirect.sync_inventory": sync.sync_inventory_job,
            "winedirect.sync_products": sync.sync_products_job,
        }

    @hookimpl
    def wms_scheduled_jobs(self):
        config = self.config()
        jobs = [ScheduledJob("winedirect.shipments", "winedirect.sync_shipments",
                             max(1, int(config.get("shipment_sync_minutes") or 15)) * 60)]
        if config.get("inventory_auto_sync"):
            jobs.append(ScheduledJob("winedirect.inventory", "winedirect.sync_inventory",
                                     max(1, int(config.get("inventory_sync_minutes") or 60)) * 60))
        return jobs

    @hookimpl
    def wms_admin_menu(self, user):
        return [MenuItem("winedirect.dashboard", "WineDirect", order=60)]

    @hookimpl
    def wms_panels(self, page, obj, user):
        if page == "order" and obj is not None:
            context = sync.order_panel_context(obj)
            if context is None:
                return []
            return [Panel("WineDirect Fulfillment", render_template("winedirect/order_panel.html", **context),
                          order=50)]
        if page == "product" and obj is not None:
            return [Panel("WineDirect Fulfillment",
                          render_template("winedirect/product_panel.html", is_admin=bool(getattr(user, "is_admin", False)),
                                          **sync.product_panel_context(obj)),
                          order=50)]
        return []

    def dashboard_url(self):
        return url_for("winedirect.dashboard")


plugin = WineDirectPlugin()
