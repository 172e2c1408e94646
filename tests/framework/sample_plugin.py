"""A marketplace plugin used by the framework tests: a menu item, an order panel, a route, an event
hook, a job handler, a batched stock push over real HTTP, and signed webhooks."""

import hashlib
import hmac
import json
import os

from flask import Blueprint

from wms.core.services import orders
from wms.extensions import db
from wms.integrations.http import RemoteHttp
from wms.plugins import MarketplacePlugin, MenuItem, Panel, PushResult, Setting, hookimpl
from wms.plugins.settings import decrypt

bp = Blueprint("sampleshop", __name__, url_prefix="/plugins/sampleshop",
               template_folder=os.path.join(os.path.dirname(__file__), "sample_templates"))
SEEN_ORDERS = []   # order ids the event hook saw


@bp.route("/hello")
def hello():
    return "hello from sampleshop"


class SampleShop(MarketplacePlugin):
    name = "sampleshop"
    title = "Sample Shop"
    description = "A store used by the tests."
    settings = (Setting("shop_label", "Label", required=True), Setting("api_secret", "Secret", "secret"))
    store_settings = (Setting("token", "Token", "secret", required=True),)
    guide_template = "sampleshop/guide.html"
    sandbox = "tests.framework.sample_sandbox:create_app"
    blueprint = bp

    @hookimpl
    def wms_admin_menu(self, user):
        return [MenuItem("sampleshop.hello", "Sample shop")]

    @hookimpl
    def wms_panels(self, page, obj, user):
        if page == "order":
            return [Panel("Sample panel", f"<p class='sample-panel'>Sample shop knows order {obj.number}</p>")]
        return []

    @hookimpl
    def wms_order_created(self, order):
        SEEN_ORDERS.append(order.id)

    def test_connection(self, store=None):
        return True, "Sample shop answered."

    def client(self, store):
        token = decrypt(store.credentials).get("token", "")
        return RemoteHttp(store.remote_address, plugin=self.name, store_id=store.id, secrets=[token],
                          headers={"Authorization": f"Bearer {token}"}, timeout=(2, 5))

    def push_stock(self, store, items):
        payload = [{"sku": i.sku, "location": i.remote_location_id, "quantity": i.quantity} for i in items]
        self.client(store).post("/levels", json={"items": payload})
        return [PushResult(i.product_id, i.remote_location_id, True, remote_quantity=i.quantity) for i in items]

    def verify_webhook(self, store, headers, body):
        secret = decrypt(store.credentials).get("token", "").encode()
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("X-Sample-Signature", ""))

    def webhook_delivery(self, store, headers, body):
        return headers.get("X-Sample-Topic", "order"), headers.get("X-Sample-Delivery", "")

    def handle_webhook(self, store, event):
        data = json.loads(event.payload)
        orders.create_order(orders.OrderInput(
            number=data["number"], source=self.name, store_id=store.id, remote_id=str(data["id"]),
            unknown_sku="hold", lines=[orders.LineInput(sku=l["sku"], quantity=l["quantity"]) for l in data["lines"]]))
        db.session.flush()


plugin = SampleShop()
