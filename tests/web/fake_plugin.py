"""A small marketplace plugin for the integration page tests (`WMS_PLUGINS = ["tests.web.fake_plugin"]`).

Its remote answers are decided by what the admin typed, so tests can drive both outcomes:
plugin-wide, account "refused" makes the remote refuse the credentials; per store, a blank API secret
fails the test and the secret "wrong" is refused.
"""

from flask import Blueprint

from wms.integrations.errors import RemoteAuthError
from wms.plugins import MarketplacePlugin, Setting
from wms.plugins import settings as plugin_settings

TEMPLATES = "fake_plugin_templates"

# What the remote lists as its stock locations; tests replace it.
REMOTE_LOCATIONS = [("loc-1", "Tasting room"), ("loc-2", "Online warehouse")]


class FakeShopPlugin(MarketplacePlugin):
    name = "fakeshop"
    title = "Fake Shop"
    description = "A storefront that exists only in the tests."
    settings = (
        Setting("api_token", "API token", type="secret", help="From the Fake Shop partner dashboard."),
        Setting("account", "Account name", required=True),
    )
    store_settings = (
        Setting("api_secret", "API secret", type="secret"),
        Setting("stock_sync", "Push stock to this store", type="bool", default=True),
    )
    guide_template = "fakeshop/guide.html"
    settings_template = "fakeshop/settings_extra.html"

    @property
    def blueprint(self):
        # A new blueprint per app: the plugin host adds a before_request guard to each blueprint it
        # registers, which Flask refuses on a blueprint already registered on an earlier test's app.
        bp = Blueprint("fakeshop", __name__, url_prefix="/fakeshop", template_folder=TEMPLATES)
        bp.add_url_rule("/ping", "ping", lambda: "pong from fakeshop")
        return bp

    def test_connection(self, store=None):
        if store is None:
            account = self.config().get("account")
            if account == "refused":
                raise RemoteAuthError("Fake Shop refused the API token for account refused.", status=401)
            return True, f"Signed in as {account}."
        secret = plugin_settings.decrypt(store.credentials).get("api_secret")
        if not secret:
            return False, "No API secret is set for this store."
        if secret == "wrong":
            raise RemoteAuthError("Fake Shop answered 401: the API secret was refused.", status=401)
        return True, f"{store.name} answers."

    def remote_locations(self, store):
        return list(REMOTE_LOCATIONS)

    def push_stock(self, store, items):
        return []

    def verify_webhook(self, store, headers, body):
        return False

    def webhook_delivery(self, store, headers, body):
        return None

    def handle_webhook(self, store, event):
        return None


plugin = FakeShopPlugin()
