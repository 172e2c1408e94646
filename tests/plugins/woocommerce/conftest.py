"""Fixtures: the WooCommerce sandbox over real HTTPS, clients for it, and a webhook receiver."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plugins.woocommerce.client import WooClient
from plugins.woocommerce.sandbox import create_app, make_tls
from wms.sandbox.harness import SandboxServer

CONSUMER_KEY = "ck_" + "1" * 40
CONSUMER_SECRET = "cs_" + "2" * 40


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """(server SSLContext, CA bundle path) from a throwaway CA."""
    return make_tls(tmp_path_factory.mktemp("woo-tls"))


@pytest.fixture(scope="session")
def sandbox_server(tls):
    context, _ = tls
    app = create_app({"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET})
    server = SandboxServer(app, ssl_context=context, hang_seconds=1.0).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The shared HTTPS sandbox, with fresh state, no faults and an empty call log for each test."""
    sandbox_server.faults.clear()
    sandbox_server.faults.clear_calls()
    sandbox_server.app.reset_sandbox()
    return sandbox_server


@pytest.fixture
def store(sandbox):
    """The sandbox's state object (Python control surface)."""
    return sandbox.app.sandbox


class SleepRecorder:
    """Stands in for time.sleep so retries are asserted without waiting."""

    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)


@pytest.fixture
def sleeps():
    return SleepRecorder()


@pytest.fixture
def calls():
    """Activity-log records the client hands to its recorder."""
    return []


@pytest.fixture
def make_client(sandbox, tls, sleeps, calls):
    _, ca_path = tls

    def make(consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET, **options):
        options.setdefault("verify", ca_path)
        options.setdefault("timeout", (2, 2))
        options.setdefault("sleep", sleeps)
        options.setdefault("recorder", calls.append)
        return WooClient(sandbox.url, consumer_key, consumer_secret, allow_private=True, **options)

    return make


@pytest.fixture
def client(make_client):
    return make_client()


class Receiver:
    """A webhook endpoint on loopback: records raw requests, answers `status`."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.event:
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                    receiver.event.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/woo"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def topics(self):
        return [r["headers"].get("X-WC-Webhook-Topic") for r in self.requests]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.stop()


# --- the plugin in the app -------------------------------------------------------------------
DEAD_PUBLIC_URL = "http://127.0.0.1:9"   # nothing listens: deliveries to it fail at once


@pytest.fixture
def app_config(redis_url, tls, sleeps):
    _, ca_path = tls
    return {"WMS_PLUGINS": ["plugins.woocommerce"], "REDIS_URL": redis_url, "WMS_RELAY_ON_COMMIT": True,
            "WMS_PUSH_WINDOW_SECONDS": 0, "WMS_RETRY_BACKOFF": (1, 1, 1), "WOOCOMMERCE_CA_FILE": ca_path,
            "WOOCOMMERCE_TIMEOUT": (2, 2), "WOOCOMMERCE_SLEEP": sleeps, "WMS_PUBLIC_URL": DEAD_PUBLIC_URL}


@pytest.fixture
def web(app, admin):
    """A signed-in admin's test client (the plain `client` fixture here is the WooCommerce client)."""
    from tests.conftest import login_as
    return login_as(app.test_client(), admin)


@pytest.fixture
def active(app):
    from wms.extensions import db
    from wms.plugins.manager import plugin_host
    plugin_host().set_active("woocommerce", True)
    db.session.commit()
    return plugin_host().get("woocommerce")


def add_shop(sandbox, warehouse, name="Online shop", consumer_key=CONSUMER_KEY, consumer_secret=CONSUMER_SECRET,
             **settings):
    """A WooCommerce store row pointing at the sandbox, its location mapped to `warehouse` (not connected)."""
    from plugins.woocommerce.plugin import plugin
    from wms.extensions import db
    from wms.plugins.models import Store, StoreLocation
    from wms.plugins.settings import encrypt
    values = {s.key: s.default for s in plugin.store_settings if not s.is_secret}
    values.update(stock_sync=settings.get("stock_authority", "wms") == "wms", **settings)
    shop = Store(plugin="woocommerce", name=name, remote_address=sandbox.url, status="pending", settings=values,
                 credentials=encrypt({"consumer_key": consumer_key, "consumer_secret": consumer_secret}))
    shop.locations.append(StoreLocation(remote_id="default", remote_name="Store stock", warehouse_id=warehouse.id,
                                        shipping_process_id=warehouse.shipping_processes[0].id, is_default=True))
    db.session.add(shop)
    db.session.commit()
    return shop


def connect(shop):
    from plugins.woocommerce import store as woo_store
    from wms.extensions import db
    message = woo_store.connect(shop)
    shop.status = "connected"
    db.session.commit()
    return message


@pytest.fixture
def shop(active, sandbox, warehouse):
    """A connected store (WMS is the stock authority, Absolute) mapped to the MAIN warehouse."""
    created = add_shop(sandbox, warehouse)
    connect(created)
    return created


def jobs(app):
    from tests.framework.conftest import run_jobs
    run_jobs(app)
