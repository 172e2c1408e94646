"""The Vinoshipper plugin: compliance and fulfillment for the states an admin selects.

Orders shipping to a selected state (from any store, the API or created by hand) are sent to
Vinoshipper by a job after `wms_order_created`; fulfillment comes back by webhook (when a webhook
secret is set) and by polling, and is recorded in the WMS as a shipment with tracking. The logic
lives in `sync.py`, the pages and actions in `views.py`.
"""

from flask import render_template

from wms.integrations.errors import RemoteAuthError, RemoteError
from wms.plugins import FulfillmentPlugin, MenuItem, Panel, ScheduledJob, Setting, hookimpl

from . import contract as vs
from . import sync
from .views import bp

POLL_SECONDS = 300


class VinoshipperPlugin(FulfillmentPlugin):
    name = "vinoshipper"
    title = "Vinoshipper"
    description = ("Compliance checks and fulfillment by Vinoshipper for shipping orders to the states "
                   "you choose; fulfillment status and tracking come back to the order.")
    guide_template = "vinoshipper/guide.html"
    settings_template = "vinoshipper/_settings_extra.html"
    sandbox = "plugins.vinoshipper.sandbox:create_app"
    blueprint = bp
    settings = (
        Setting("base_url", "Vinoshipper address", "url", default=vs.PRODUCTION_BASE_URL,
                help="https://vinoshipper.com unless Vinoshipper gave you a test address."),
        Setting("api_key", "API key", "secret", required=True,
                help="Account > Integrations > API Keys in Vinoshipper; it starts with your producer id, "
                     "like 2212.BA9D…"),
        Setting("api_secret", "API secret", "secret", required=True,
                help="Shown once, next to the key, when the key is created."),
        Setting("states", "States sent to Vinoshipper", "multichoice", default=[],
                choices=sync.US_STATES,
                help="Shipping orders to these states go to Vinoshipper for compliance and fulfillment; "
                     "orders to other states stay with the WMS."),
        Setting("shipping_methods", "Shipping methods to UPS services", "text",
                default="Ground = 03\nStandard = 03\n2nd Day Air = 02\nNext Day Air = 01\n"
                        "3 Day Select = 12\nNext Day Air Early = 14",
                help="One line per WMS shipping method: 'method = code'. Codes: "
                     + ", ".join(f"{c} {n}" for c, n in vs.UPS_RATE_CODES.items()) + "."),
        Setting("default_rate_code", "UPS service for unmapped methods", "choice", default="03",
                choices=(*((code, f"{code} {label}") for code, label in vs.UPS_RATE_CODES.items()),
                         ("none", "None: such orders fail with a message")),
                help="Used when an order's shipping method has no line above."),
        Setting("webhook_secret", "Webhook secret", "secret",
                help="Set it to receive Vinoshipper's webhooks (see the Integration Guide for the URL). "
                     "Without it the WMS polls Vinoshipper every 5 minutes."),
    )

    ups_codes = vs.UPS_RATE_CODES

    def saved_settings(self):
        """The non-secret settings with defaults (readable even when the secrets are not)."""
        from wms.plugins.settings import state_for
        state = state_for(self.name, create=False)
        values = {s.key: s.default for s in self.settings if not s.is_secret}
        values.update({k: v for k, v in ((state.settings if state else None) or {}).items() if k in values})
        return values

    def mapping_check(self):
        """(mapping, errors) of the saved shipping-method mapping, for the settings page."""
        return sync.parse_method_map(self.saved_settings().get("shipping_methods"))

    def test_connection(self, store=None):
        try:
            answer = sync.make_client().test_connection()
        except RemoteAuthError as exc:
            return False, exc.message
        except (RemoteError, sync.ConfigError) as exc:
            return False, exc.message
        shippers = ", ".join(s for s in answer["shippers"] if s) or "no active shipper"
        return True, f"Vinoshipper producer {answer['producer_id']} answered; shippers: {shippers}."

    # -- hooks ------------------------------------------------------------------------------------
    @hookimpl
    def wms_order_created(self, order):
        if order is not None:
            sync.queue_send(order)

    @hookimpl
    def wms_order_routed(self, order, shipping_process):
        # An order routed to a Vinoshipper shipping process is sent too (once: the same dedupe key).
        if order is not None and self.handles(shipping_process):
            sync.queue_send(order)

    @hookimpl
    def wms_order_cancelled(self, order):
        if order is not None:
            sync.order_cancelled(order)

    @hookimpl
    def wms_job_handlers(self):
        return {sync.TOPIC_SEND: sync.send_order, sync.TOPIC_VOID: sync.void_order,
                sync.TOPIC_REFRESH: sync.refresh_order, sync.TOPIC_POLL: sync.poll}

    @hookimpl
    def wms_scheduled_jobs(self):
        return [ScheduledJob("vinoshipper.poll", sync.TOPIC_POLL, POLL_SECONDS)]

    @hookimpl
    def wms_admin_menu(self, user):
        if getattr(user, "is_admin", False):
            return [MenuItem("vinoshipper.dashboard", "Vinoshipper")]
        return []

    @hookimpl
    def wms_panels(self, page, obj, user):
        if page != "order" or obj is None:
            return []
        from .views import card_context
        return [Panel("Vinoshipper", render_template("vinoshipper/_order_panel.html", **card_context(obj)),
                      order=50)]


plugin = VinoshipperPlugin()
