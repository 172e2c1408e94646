"""Fixtures: a Shopify sandbox served over loopback, a client pointed at it, a webhook receiver."""

import threading

import pytest
from flask import Flask, request

from plugins.shopify.client import ShopifyClient
from plugins.shopify.sandbox import create_app
from plugins.shopify.sandbox_schema import load_schema
from wms.sandbox.harness import SandboxServer

SHOP = "sandbox-winery.myshopify.com"
CLIENT_ID = "wms-test-app"
CLIENT_SECRET = "shpss_test_secret_0123456789"


@pytest.fixture(scope="session", autouse=True)
def schema():
    return load_schema()  # built once per session (about 3 s)


@pytest.fixture
def sandbox_app():
    return create_app({"apps": {CLIENT_ID: CLIENT_SECRET}, "shops": [SHOP], "webhook_first_retry_seconds": 0.01,
                       "webhook_retries": 3})


@pytest.fixture
def server(sandbox_app):
    with SandboxServer(sandbox_app, hang_seconds=2.0) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_app):
    return sandbox_app.sandbox


@pytest.fixture
def shop(sandbox):
    return sandbox.shops[SHOP]


@pytest.fixture
def shop_url(server):
    return f"{server.url}/shops/{SHOP}"


class SleepRecorder:
    """Really sleeps (the sandbox's bucket runs on real time) and remembers each wait."""

    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)
        threading.Event().wait(seconds)


@pytest.fixture
def make_client(sandbox, shop_url):
    def build(token=None, **options):
        if token is None:
            token = sandbox.create_token(SHOP).value
        options.setdefault("timeout", (2, 5))
        options.setdefault("sleep", SleepRecorder())
        options.setdefault("backoff_seconds", 0.05)
        return ShopifyClient(SHOP, token, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=shop_url,
                             allow_private=True, **options)
    return build


@pytest.fixture
def client(make_client):
    return make_client()


class Receiver:
    """A tiny app that records webhook POSTs (raw body and headers) and answers `statuses` in turn."""

    def __init__(self):
        self.requests = []
        self.statuses = []
        self.lock = threading.Lock()
        self.app = Flask("webhook-receiver")
        self.app.add_url_rule("/hooks/<path:name>", view_func=self.receive, methods=["POST"])

    def receive(self, name):
        with self.lock:
            self.requests.append({"path": request.path, "body": request.get_data(), "headers": dict(request.headers)})
            status = self.statuses.pop(0) if self.statuses else 200
        return "", status

    def of_topic(self, topic):
        return [r for r in self.requests if r["headers"].get("X-Shopify-Topic") == topic]


@pytest.fixture
def receiver():
    hooks = Receiver()
    with SandboxServer(hooks.app) as running:
        hooks.url = running.url
        yield hooks


# --- the plugin inside the WMS (test_plugin_*.py, test_browser_oauth.py) ------------------------------------
def control_url(server, path):
    return f"{server.url}/_sandbox/shopify/{path.lstrip('/')}"


def control_post(server, path, body=None):
    import requests
    response = requests.post(control_url(server, path), json=body or {}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def control_get(server, path, **params):
    import requests
    response = requests.get(control_url(server, path), params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def activate_shopify(app_url):
    """The plugin active, configured with the sandbox's app; Shopify reaches the WMS at `app_url`."""
    from wms.extensions import db
    from wms.plugins.settings import encrypt, state_for
    state = state_for("shopify")
    state.is_active = True
    state.settings = {"client_id": CLIENT_ID, "app_url": app_url}
    state.secrets = encrypt({"client_secret": CLIENT_SECRET})
    db.session.commit()


@pytest.fixture
def shopify_active(app, server, live_server):
    """The plugin active; callbacks and webhooks go to the live WMS server. Returns its URL."""
    activate_shopify(live_server)
    return live_server


def connect_store(sandbox, server, shop=SHOP, name=None, warehouses=(), default=0, **settings):
    """A connected store as OAuth leaves it: a sandbox token, the shop's locations (the n-th mapped to
    warehouses[n] and its first shipping process, `default` the default), settings over the defaults."""
    from plugins.shopify import connection
    from plugins.shopify.plugin import plugin
    from wms.extensions import db
    from wms.plugins.models import Store, StoreLocation
    if shop not in sandbox.shops:
        sandbox.add_shop(shop)
    token = sandbox.create_token(shop)
    values = {s.key: s.default for s in plugin.store_settings}
    values.update(settings)
    store = Store(plugin="shopify", name=name or shop, remote_address=f"https://{shop}", status="connected",
                  settings=values)
    db.session.add(store)
    db.session.flush()
    connection.remember(store, shop=shop, api_base_url=f"{server.url}/shops/{shop}", scopes=list(token.scopes))
    connection.save_credentials(store, {"access_token": token.value, "refresh_token": token.refresh_token,
                                        "expires_at": token.expires_at})
    for index, location in enumerate(sandbox.shops[shop].locations.values()):
        warehouse = warehouses[index] if index < len(warehouses) else None
        store.locations.append(StoreLocation(
            remote_id=f"gid://shopify/Location/{location.id}", remote_name=location.name,
            warehouse_id=warehouse.id if warehouse else None,
            shipping_process_id=warehouse.shipping_processes[0].id if warehouse else None,
            is_default=warehouse is not None and index == default))
    db.session.commit()
    return store


def subscribe(store):
    """Run the webhook subscription job now (the callback queues it)."""
    from plugins.shopify import connection
    from wms.extensions import db
    connection.subscribe_job({"store_id": store.id})
    db.session.commit()


def map_product(server, store, product, stock=0, shop=None):
    """The product as a Shopify variant (with `stock` at every location), mapped to the store."""
    from wms.extensions import db
    from wms.plugins.models import ProductMapping
    shop = shop or store.remote_address.replace("https://", "")
    created = control_post(server, f"shops/{shop}/products",
                           {"title": product.name, "variants": [{"sku": product.sku, "stock": stock}]})
    variant = created["variants"][0]
    mapping = ProductMapping(store_id=store.id, product_id=product.id,
                             remote_product_id=f"gid://shopify/Product/{created['id']}",
                             remote_variant_id=f"gid://shopify/ProductVariant/{variant['id']}",
                             remote_inventory_id=f"gid://shopify/InventoryItem/{variant['inventory_item_id']}",
                             remote_sku=product.sku, matched_by="sku")
    db.session.add(mapping)
    db.session.commit()
    return mapping


def shopify_available(server, shop, mapping, location_index=0):
    """Shopify's `available` of the mapped item at the shop's n-th location, read from the sandbox."""
    item_id = mapping.remote_inventory_id.rsplit("/", 1)[-1]
    location = control_get(server, "shops")["shops"]
    location_id = next(s for s in location if s["domain"] == shop)["locations"][location_index]["id"]
    levels = control_get(server, f"shops/{shop}/levels", inventory_item_id=item_id, location_id=location_id)
    return levels["levels"][0]["quantities"]["available"] if levels["levels"] else None
